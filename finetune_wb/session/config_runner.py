"""``run_config``: run a :class:`~finetune_wb.config.RunConfig` through a :class:`FineTuneSession`.

This is what ``finetune-wb run CONFIG`` calls: load the records, build the examples once, prepare, validate,
fine-tune, wait and evaluate, and return a :class:`RunResult`. The configuration itself (what a config file may
say) lives in :mod:`finetune_wb.config`, which never imports the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from finetune_wb.config.model import RunConfig, config_key
from finetune_wb.errors import ConfigError
from finetune_wb.session.facade import FineTuneSession


class RunResult(BaseModel):
    """What :func:`run_config` did: the session's state and, when evaluated, the report's numbers."""

    state_path: str
    session_id: str
    job_id: str | None
    job_status: str | None
    fine_tuned_model: str | None
    validation: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(None, description="metrics and comparisons (no rows)")
    evaluation_text: str | None = Field(None, description="the report's text summary")
    deployment: dict[str, Any] | None = Field(None, description="the Azure deployment (with [azure])")


def _is_local(base_url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    return host in {"127.0.0.1", "localhost", "::1"}


def _set_aside(path: Path) -> Path | None:
    """Move a state file out of the way for a new session: ``<name>.<session id>.json`` beside it."""
    from finetune_wb.session.state import load_state

    if not path.is_file():
        return None
    try:
        tag = load_state(path).session_id
    except ConfigError:
        tag = "unreadable"
    target = path.with_name(f"{path.stem}.{tag}{path.suffix or '.json'}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}.{tag}-{n}{path.suffix or '.json'}")
    path.replace(target)
    return target


def check_same_server(session: FineTuneSession) -> None:
    """A resumed session whose file or job lives on another server than the client's: say what to do.

    The state records the server (``base_url``, without credentials); its uploaded file and its job exist
    only there, so resuming against another server would end in a bare 404."""
    from finetune_wb._client import base_url_of
    from finetune_wb._secrets import safe_url

    st = session.state
    before = safe_url(st.base_url)
    if not before or not (st.job_id or st.training_file_id):
        return
    now = base_url_of(session.client)
    if now == before:
        return
    what = f"job {st.job_id}" if st.job_id else f"training file {st.training_file_id}"
    raise ConfigError(
        f"the session in {session.state_path} ({st.session_id}) ran against {before}, and its {what} lives "
        f"there; this run talks to {now}. Point OPENAI_BASE_URL back at {before} to resume it, or pass "
        f"--new-session (run_config(new_session=True)) to set that state file aside and start a new session "
        f"against {now} (a new upload and a new, paid job)"
    )


def run_config(
    config: RunConfig,
    *,
    client: Any = None,
    state_path: str | Path | None = None,
    yes: bool = False,
    confirm: Any = None,
    echo: Any = None,
    progress: bool = False,
    new_session: bool = False,
    azure_token: str | None = None,
) -> RunResult:
    """Run a whole session from ``config``: prepare, validate, fine-tune, wait, evaluate; resumable.

    The state file is ``state_path``, else the config's ``state_path``, else ``<config stem>.state.json``
    beside the config. Against a server that is not on this machine, creating the job needs ``yes=True`` or
    ``confirm(question) -> True`` (the question states the estimated cost). A state file whose session ran
    against another server is a :class:`ConfigError` saying what to do; ``new_session=True`` moves an
    existing state file aside (``<name>.<session id>.json``) and starts a new session. With an ``[azure]``
    section the client is Azure's, and the fine-tune is deployed before it is evaluated (``azure_token``:
    the ARM token, default ``AZURE_MANAGEMENT_TOKEN`` or azure-identity).
    """
    say = echo or (lambda _line: None)
    spec = config.job_spec()
    if config.azure is not None and client is None:
        from finetune_wb.session.azure_run import azure_client

        client = azure_client(config.azure)
    path = Path(state_path) if state_path is not None else config.resolved_state_path()
    if new_session and path is not None:
        moved = _set_aside(path)
        if moved is not None:
            say(f"new session: the previous state file is kept as {moved}")
    session = FineTuneSession(
        config.project,
        client=client,
        state_path=path,
        wandb_mode=config.wandb_mode,
        entity=config.entity,
        progress=progress,
    )
    check_same_server(session)
    st = session.state
    if st.job_id is None:
        from finetune_wb.data.build import build_examples

        source = config.source_path or "<config>"
        with config_key(source, "data"):
            records = config.load_records()
        template = config.build_template()
        with config_key(source, "template"):  # a field the records lack is named before any split
            examples = build_examples(records, template=template)
        split = config.split
        with config_key(source, "split"):
            train, test = session.prepare(
                examples,
                template=template,
                n_train=split.n_train,
                train_fraction=split.train_fraction,
                seed=split.seed,
                stratify=split.stratify,
                group_near_duplicates=split.group_near_duplicates,
            )
        say(f"prepared {len(records)} records -> {len(train)} train / {len(test)} test")
        n_epochs = spec.n_epochs if isinstance(spec.n_epochs, int) else None
        report = session.validate(model=spec.model, n_epochs=n_epochs)
        cost = report.estimated_cost_usd
        cost_text = "unknown" if cost is None else f"${cost:,.4f}"
        if config.azure is not None:
            from finetune_wb.session.azure_run import hosting_note

            cost_text += hosting_note(spec.model, config.azure)
        say(
            f"validation ok: {report.n_examples} examples, ~{report.tokens.billed:,} billed tokens, cost {cost_text}"
        )
        from finetune_wb._client import base_url_of

        base_url = base_url_of(session.client)
        if not yes and not _is_local(base_url):
            question = f"Create a fine-tuning job for {spec.model} at {base_url} (estimated {cost_text})?"
            if confirm is None or not confirm(question):
                raise ConfigError(
                    f"not creating a fine-tuning job at {base_url} without confirmation (estimated {cost_text}); "
                    "pass --yes to proceed"
                )
    else:
        say(f"resuming session {st.session_id}: job {st.job_id} ({st.job_status})")
    quality = config.quality
    job = session.fine_tune(
        spec, quality=quality.mode, accept_quality=quality.accept, quality_options=quality.options()
    )
    if st.quality and quality.mode != "off":
        counts = st.quality.get("counts") or {}
        found = ", ".join(f"{code} {n}" for code, n in sorted(counts.items())) or "no findings"
        say(
            f"data quality: {found}" + (f" (accepted: {', '.join(quality.accept)})" if quality.accept else "")
        )
    say(f"job {job.id} {job.status}; waiting")
    job = session.wait()
    say(f"job {job.id} {job.status} -> {job.fine_tuned_model}")
    if config.azure is not None:
        from finetune_wb.session.azure_run import deploy_for_run

        deploy_for_run(session, config.azure, say=say, token=azure_token)
    evaluation = text = None
    if not config.evaluation.skip:
        ev = config.evaluation
        eval_report = session.evaluate(
            baselines=ev.baselines,
            evaluators=config.build_evaluators(),
            concurrency=ev.concurrency,
            rpm=ev.rpm,
            tpm=ev.tpm,
            max_tokens=ev.max_tokens,
            temperature=ev.temperature,
        )
        evaluation = dict(session.state.eval_summary or {})
        text = eval_report.summary()
    if config.azure is not None and config.azure.undeploy:
        deleted = session.undeploy(token=azure_token)
        say(
            f"deployment {(session.state.deployment or {}).get('name')} {'deleted' if deleted else 'was gone'}"
        )
    st = session.state
    return RunResult(
        state_path=str(session.state_path),
        session_id=st.session_id,
        job_id=st.job_id,
        job_status=st.job_status,
        fine_tuned_model=st.fine_tuned_model,
        validation=st.validation,
        evaluation=evaluation,
        evaluation_text=text,
        deployment=st.deployment,
    )
