"""Record what a fine-tune answers before it is gone: :func:`snapshot` writes a golden set.

It asks the model every prompt through the evaluation engine (concurrent, rate-limited, retried, each answer
committed to the SQLite answer cache as it arrives), so a snapshot that is killed continues where it stopped
and asks nothing twice. The golden file (see :mod:`finetune_wb.migration.golden`) is written, atomically, only
once every prompt has an answer; until then the answers wait in the cache. With a W&B run (or ``project=``)
both files are logged as a ``golden-set`` artifact whose inputs are the model artifact and the prompt dataset
(when this machine recorded them).

Before it starts, the model is looked up (a model that has been shut down, or does not exist, is a plain
error: nothing is sent) and the cost is estimated from the prompts' tokens and the price table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from finetune_wb.migration.errors import ModelNotFoundError, ModelShutDownError
from finetune_wb.migration.golden import PromptRow, golden_lines, meta_path, read_prompts, write_golden
from finetune_wb.model_ids import base_model_of

GOLDEN_ARTIFACT_TYPE = "golden-set"
_PLACEHOLDER = "-"  # the engine scores against an answer; prompts without one get this (never written)


class CostEstimate(BaseModel):
    """What a run over these prompts may cost, before any request (answers already cached cost nothing)."""

    model: str
    n_requests: int
    prompt_tokens: int
    completion_tokens: int = Field(description="the references' tokens where there are any, else max_tokens")
    estimated_cost_usd: float | None = Field(description="None when the price table does not know the model")
    basis: str

    def line(self) -> str:
        cost = (
            "unknown (model not in the price table)"
            if self.estimated_cost_usd is None
            else (f"~${self.estimated_cost_usd:.4f}")
        )
        return (
            f"{self.model}: {self.n_requests} request(s), ~{self.prompt_tokens} prompt + ~{self.completion_tokens} "
            f"completion tokens, {cost} ({self.basis}; cached answers cost nothing)"
        )


class SnapshotResult(BaseModel):
    """The result of :func:`snapshot`; ``golden_path`` is None until every prompt is answered."""

    model: str
    base_model: str
    golden_path: str | None
    meta_path: str | None
    prompts_path: str | None
    n_prompts: int
    n_answered: int
    n_unanswered: int
    n_cached: int = Field(description="answers that came from the cache (no request this run)")
    n_requests: int = Field(description="HTTP requests sent this run, retries included")
    n_references: int = Field(description="prompts that came with a reference answer (kept in the sidecar)")
    estimate: CostEstimate
    cost_usd: float | None = Field(description="list-price cost of the answers (cached ones included)")
    first_error: str | None = None
    artifact: dict[str, Any] | None = Field(default=None, description="the golden-set artifact, when logged")

    @property
    def complete(self) -> bool:
        return self.golden_path is not None and self.n_unanswered == 0


def estimate_cost(
    model: str,
    rows: list[list[dict[str, Any]]],
    *,
    references: list[str | None] | None = None,
    max_tokens: int = 256,
    prices: dict[str, tuple[float, float]] | None = None,
) -> CostEstimate:
    """Tokens of every prompt (tiktoken, the model's encoding) and of the expected answers, priced."""
    from finetune_wb.evaluation.pricing import estimate_cost as price
    from finetune_wb.schema import content_text
    from finetune_wb.validation.tokens import encoding_name_for_model, get_encoding

    enc = get_encoding(encoding_name_for_model(model))
    prompt = sum(
        4 * len(m) + 3 + sum(len(enc.encode_ordinary(content_text(x.get("content")))) for x in m)
        for m in rows
    )
    refs = [r for r in (references or []) if r is not None]
    if refs:
        mean_ref = sum(len(enc.encode_ordinary(r)) + 1 for r in refs) / len(refs)
        completion = round(mean_ref * len(rows))
        basis = "answers as long as the references"
    else:
        completion = max_tokens * len(rows)
        basis = f"at most max_tokens={max_tokens} per answer"
    return CostEstimate(
        model=model,
        n_requests=len(rows),
        prompt_tokens=prompt,
        completion_tokens=completion,
        estimated_cost_usd=price(model, prompt, completion, prices),
        basis=basis,
    )


def _shutdown_error(model: str, date: str | None, said: str | None = None) -> ModelShutDownError:
    when = f" on {date}" if date else ""
    told = f" (the server says: {said})" if said else ""
    return ModelShutDownError(
        f"model {model!r} has been shut down{when}{told}: it answers no request any more, so its answers can no "
        "longer be recorded. If you have a golden set or its test set, compare replacements with "
        "`finetune-wb migrate --golden FILE --candidate MODEL`",
        model=model,
        shutdown_date=date,
    )


def check_model(client: Any, model: str, *, today: dt.date | None = None) -> dt.date | None:
    """The model's server ``shutdown_date`` (None when it has none); raises when it is gone or unknown."""
    import openai

    from finetune_wb.migration.inventory import parse_shutdown_date

    try:
        obj = client.models.retrieve(model)
    except openai.NotFoundError as exc:
        text = str(exc)
        if "deprecated" in text or "shut down" in text:
            raise _shutdown_error(model, None, text[:300]) from None
        raise ModelNotFoundError(
            f"model {model!r} does not exist on {client.base_url} or this key may not use it (404); check the id "
            "(`finetune-wb retirements` lists the fine-tunes this key can see)",
            model=model,
        ) from None
    except (openai.PermissionDeniedError, openai.AuthenticationError) as exc:
        raise ModelNotFoundError(
            f"this API key may not use model {model!r} ({exc.status_code}); use a key of the organisation that "
            "owns the fine-tune",
            model=model,
        ) from None
    extra = getattr(obj, "model_extra", None) or {}
    date = parse_shutdown_date(extra.get("shutdown_date", getattr(obj, "shutdown_date", None)))
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if date is not None and date < today:
        raise _shutdown_error(model, date.isoformat())
    return date


def default_golden_path(prompts: Path, model: str) -> Path:
    from finetune_wb.tracking.records import safe_name

    return prompts.with_name(f"{prompts.stem}.golden-{safe_name(model, fallback='model')}.jsonl")


def snapshot(
    model: str,
    prompts: str | Path,
    *,
    out: str | Path | None = None,
    client: Any = None,
    run: Any = None,
    project: str | None = None,
    today: dt.date | None = None,
    on_estimate: Callable[[CostEstimate], None] | None = None,
    **options: Any,
) -> SnapshotResult:
    """Ask ``model`` every prompt of the chat JSONL ``prompts`` and store its answers as a golden set.

    ``out``: the golden file (default ``PROMPTS.golden-MODEL.jsonl`` beside the prompts). ``run``: a W&B run to
    log the ``golden-set`` artifact to (never finished here); ``project``: start (and finish) a ``snapshot``
    run in that project instead. ``on_estimate`` is called with the :class:`CostEstimate` before any request.
    Every other keyword is an evaluation option (``concurrency``, ``rpm``, ``tpm``, ``max_tokens``, ``cache``,
    ``progress``, ``retry``, ``prices``, ...; see :class:`~finetune_wb.evaluation.EvalOptions`).

    Raises :class:`~finetune_wb.migration.errors.MigrationInputError` for bad prompt lines (all of them, by
    line), :class:`~finetune_wb.migration.errors.ModelShutDownError` and
    :class:`~finetune_wb.migration.errors.ModelNotFoundError` before anything is sent.
    """
    from finetune_wb._client import get_client
    from finetune_wb._paths import sha256_file
    from finetune_wb.evaluation import evaluate

    path = Path(prompts)
    rows = read_prompts(path)
    client = get_client(client)
    check_model(client, model, today=today)
    estimate = estimate_cost(
        model,
        [r.messages for r in rows],
        references=[r.reference for r in rows],
        max_tokens=int(options.get("max_tokens", 256)),
        prices=options.get("prices"),
    )
    if on_estimate is not None:
        on_estimate(estimate)
    examples = [
        {"messages": [*r.messages, {"role": "assistant", "content": r.reference or _PLACEHOLDER}]}
        for r in rows
    ]
    options.setdefault("progress", False)
    report = evaluate(examples, models=[model], client=client, **options)
    by_row = sorted(
        (r for r in report.rows if r.model == report.models[0].label), key=lambda r: r.example_index
    )
    answers = [r.output for r in by_row]
    answered = [a for a in answers if a is not None]
    summary = report.models[0]
    first_error = next((r.error for r in by_row if r.output is None), None)
    if first_error and ("deprecated" in first_error or "shut down" in first_error) and not answered:
        raise _shutdown_error(model, None, first_error[:300])
    golden: Path | None = None
    artifact = None
    if len(answered) == len(rows):
        golden = Path(out) if out is not None else default_golden_path(path, model)
        data = golden_lines(rows, [a or "" for a in answers])
        meta = _meta(model, path, sha256_file(path), rows, data)
        write_golden(golden, data, meta)
        if run is not None or project is not None:
            artifact = log_golden_set(golden, meta, run=run, project=project)
    return SnapshotResult(
        model=model,
        base_model=base_model_of(model),
        golden_path=str(golden) if golden else None,
        meta_path=str(meta_path(golden)) if golden else None,
        prompts_path=str(path),
        n_prompts=len(rows),
        n_answered=len(answered),
        n_unanswered=len(rows) - len(answered),
        n_cached=summary.n_cached,
        n_requests=summary.n_requests,
        n_references=sum(1 for r in rows if r.reference is not None),
        estimate=estimate,
        cost_usd=summary.estimated_cost_usd,
        first_error=first_error,
        artifact=artifact,
    )


def _meta(model: str, prompts: Path, prompts_sha: str, rows: list[PromptRow], data: bytes) -> dict[str, Any]:
    import hashlib

    return {
        "model": model,
        "base_model": base_model_of(model),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "prompts_path": str(prompts),
        "prompts_sha256": prompts_sha,
        "golden_sha256": hashlib.sha256(data).hexdigest(),
        "n_prompts": len(rows),
        "n_references": sum(1 for r in rows if r.reference is not None),
        "lines": [r.line for r in rows],
        "references": [r.reference for r in rows],
    }


def log_golden_set(
    golden: Path, meta: dict[str, Any], *, run: Any = None, project: str | None = None
) -> dict[str, Any]:
    """Log the golden file and its sidecar as a ``golden-set`` artifact with its lineage; returns its ref."""
    import wandb

    from finetune_wb._secrets import scrub
    from finetune_wb.tracking.artifacts import ArtifactRef, find_artifact, remember
    from finetune_wb.tracking.lineage import add_lineage, link_input
    from finetune_wb.tracking.mode import is_offline, start_run
    from finetune_wb.tracking.model_artifact import model_ref
    from finetune_wb.tracking.records import safe_name

    own = run is None
    if own:
        run = start_run(
            project=str(project),
            job_type="snapshot",
            name=f"snapshot-{safe_name(str(meta['model']), fallback='model')}",
            config={"fine_tuned_model": meta["model"], "prompts_sha256": meta["prompts_sha256"]},
            what=f"a snapshot run in project {project!r}",
        )
    try:
        inputs = []
        model_art = model_ref(fine_tuned_model=str(meta["model"]))
        prompts_art = find_artifact(digest=str(meta["prompts_sha256"]), type_="dataset")
        for ref in (model_art, prompts_art):
            if ref is not None:
                inputs.append(link_input(run, ref).qualified_name)
        card = scrub({k: v for k, v in meta.items() if k not in ("references", "lines")} | {"inputs": inputs})
        name = safe_name(f"golden-{meta['model']}", fallback="golden-set")
        artifact = wandb.Artifact(
            name,
            type=GOLDEN_ARTIFACT_TYPE,
            metadata=card,
            description=f"answers of {meta['model']} to {meta['n_prompts']} prompts",
        )
        artifact.add_file(str(golden), name="golden.jsonl")
        artifact.add_file(str(meta_path(golden)), name="golden.meta.json")
        run.log_artifact(artifact, aliases=["latest", str(meta["golden_sha256"])])
        ref = ArtifactRef(
            name=name,
            type=GOLDEN_ARTIFACT_TYPE,
            digest=str(meta["golden_sha256"]),
            run_id=getattr(run, "id", None),
            entity=None if is_offline(run) else (getattr(run, "entity", None) or None),
            project=None if is_offline(run) else (getattr(run, "project", None) or None),
            metadata={**card, "local_path": str(golden)},
        )
        add_lineage(run, "outputs", ref.lineage_entry())
        remember(ref)
        return {
            "name": name,
            "type": GOLDEN_ARTIFACT_TYPE,
            "qualified_name": ref.qualified_name,
            "inputs": inputs,
        }
    finally:
        if own:
            run.finish()
