"""``finetune-wb demo``: the whole chain on the bundled dataset, offline by default.

Without ``OPENAI_API_KEY`` (or with ``emulator=True``) the demo starts the embedded emulator, writes W&B runs
offline under ``out_dir/wandb``, and runs prepare -> validate -> upload -> fine-tune -> wait -> evaluate on
the 120 generated contract clauses of :mod:`finetune_wb.data.demo_dataset`. Each offline demo is a fresh session
(the emulator forgets its jobs when it stops). With a key, it runs against the real API: it shows the
estimated cost and asks before creating the job, and keeps its state in ``out_dir/state.json`` so running it
again resumes instead of paying twice.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_wb.errors import FineTuneError

DEFAULT_OUT_DIR = "finetune-wb-demo"
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
DEMO_PROJECT = "finetune-wb-demo"


class DemoDeclined(FineTuneError):
    """The user did not confirm spending money on a real fine-tuning job."""


class DemoResult(BaseModel):
    """What the demo did; ``model_dump(mode="json")`` is what ``finetune-wb demo --json`` prints."""

    mode: Literal["emulator", "openai"]
    base_url: str
    out_dir: str
    state_path: str
    n_records: int
    n_train: int
    n_test: int
    validation: dict[str, Any]
    job_id: str
    job_status: str
    fine_tuned_model: str | None
    job_seconds: float = Field(description="wall time from job creation to its end")
    baseline: str
    metrics: dict[str, dict[str, float | None]] = Field(
        description="model -> evaluator -> headline number (as in `eval --json`)"
    )
    metric_details: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="model -> evaluator -> metric object: interval, n, and for classification the "
        "majority-class rate, balanced accuracy, macro-F1, Cohen's kappa and beats_majority",
    )
    comparisons: list[dict[str, Any]]
    warnings: list[str] = Field(default_factory=list, description="the evaluation report's warnings")
    wandb_mode: str
    wandb_dir: str | None
    wandb_runs: dict[str, str]
    sync_command: str | None
    elapsed_seconds: float


def _noop(_: str) -> None:
    return None


@contextmanager
def _backend(use_emulator: bool, *, pace: float, client: Any) -> Iterator[tuple[Any, str]]:
    from finetune_wb._client import base_url_of, get_client

    if not use_emulator:
        real = get_client(client)
        yield real, base_url_of(real)
        return
    try:
        from finetune_wb.emulator import run_emulator
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise FineTuneError(
            "the offline demo needs the emulator extra: pip install 'finetune-wb[emulator]'"
        ) from exc
    try:
        emu_cm = run_emulator(pace=pace)
        emu = emu_cm.__enter__()
    except ImportError as exc:  # starlette / uvicorn missing
        raise FineTuneError(
            f"the offline demo needs the emulator extra ({exc}): pip install 'finetune-wb[emulator]'"
        ) from exc
    try:
        yield emu.client(api_key="sk-demo-emulator"), emu.base_url
    finally:
        emu_cm.__exit__(None, None, None)


def _state_base_url(state_path: Path) -> str | None:
    """The server a previous demo session in ``state_path`` talked to (None: no such session, or unreadable)."""
    from finetune_wb.errors import ConfigError
    from finetune_wb.session.state import load_state

    if not state_path.is_file():
        return None
    try:
        return load_state(state_path).base_url
    except ConfigError:
        return None


def run_demo(
    *,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    yes: bool = False,
    emulator: bool | None = None,
    confirm: Callable[[str], bool] | None = None,
    echo: Callable[[str], None] = _noop,
    pace: float = 1.0,
    model: str = DEFAULT_MODEL,
    n_train: int = 30,
    seed: int = 42,
    n_epochs: int = 3,
    client: Any = None,
    progress: bool = False,
) -> DemoResult:
    """Run the demo and return what happened.

    Args:
        out_dir: where the state file, the data splits, the eval cache and the W&B runs go.
        yes: in a real run, create the job without asking.
        emulator: force the emulator (True) or the real API (False); None: the emulator unless
            ``OPENAI_API_KEY`` is set (or a ``client`` is given).
        confirm: asks the user a question, returns True to go on (real runs only). None and not ``yes``:
            a real run is refused with :class:`DemoDeclined`.
        echo: receives one line per step (the CLI prints them on stderr).
        pace: emulator speed (1.0: a 30-example job takes a few seconds; smaller is faster).
    """
    from finetune_wb.data.demo_dataset import demo_template, load_demo_records
    from finetune_wb.evaluation import classification, exact_match
    from finetune_wb.schema import JobSpec
    from finetune_wb.session.facade import FineTuneSession

    started = time.monotonic()
    use_emulator = (
        emulator if emulator is not None else (client is None and not os.environ.get("OPENAI_API_KEY"))
    )
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    wandb_dir = out / "wandb"  # wandb.init(dir=out) writes its run directories here
    if use_emulator:
        # The emulator forgets its jobs when it stops: an offline demo always starts a new session.
        state_path.unlink(missing_ok=True)
        shutil.rmtree(out / "state-data", ignore_errors=True)
        wandb_mode = "offline"
    else:
        from finetune_wb.tracking.mode import is_offline

        env_mode = (os.environ.get("WANDB_MODE") or "").strip().lower()
        wandb_mode = "disabled" if env_mode == "disabled" else ("offline" if is_offline() else "online")

    with _backend(use_emulator, pace=pace, client=client) as (api, base_url):
        where = f"local emulator at {base_url}" if use_emulator else base_url
        echo(f"finetune-wb demo: {where}; W&B {wandb_mode}; output in {out}")
        previous = _state_base_url(state_path)
        if previous is not None and previous != base_url:
            # e.g. an offline demo ran here first: its job lives only in that emulator, not at base_url
            echo(f"  the session in {state_path} ran against {previous}; starting a new one")
            state_path.unlink(missing_ok=True)
            shutil.rmtree(out / "state-data", ignore_errors=True)
        session = FineTuneSession(
            DEMO_PROJECT,
            client=api,
            state_path=state_path,
            wandb_mode=wandb_mode,  # type: ignore[arg-type]
            wandb_dir=out,
            progress=progress,
        )
        records = load_demo_records()
        train, test = session.prepare(records, template=demo_template(), n_train=n_train, seed=seed)
        echo(f"  prepared {len(records)} clauses -> {len(train)} train / {len(test)} test (seed {seed})")

        spec = JobSpec(model=model, n_epochs=n_epochs, suffix="demo", seed=seed)
        report = session.validate(model=model, n_epochs=n_epochs)
        validation = dict(session.state.validation or {})
        cost = report.estimated_cost_usd
        cost_text = "unknown" if cost is None else f"${cost:,.4f}"
        echo(
            f"  validation: {'ok' if report.ok else 'errors'}, {report.n_examples} examples, "
            f"~{report.tokens.billed:,} billed tokens for {report.n_epochs} epochs, estimated cost {cost_text}"
        )
        if not use_emulator and session.state.job_id is None and not yes:
            question = (
                f"Fine-tune {model} on {len(train)} examples against {base_url}: estimated {cost_text} "
                f"({report.tokens.billed:,} billed tokens). Go ahead?"
            )
            if confirm is None or not confirm(question):
                raise DemoDeclined(
                    "not creating a paid fine-tuning job without confirmation; run again with --yes to proceed, "
                    "or unset OPENAI_API_KEY to run the free offline demo against the emulator"
                )

        job_started = time.monotonic()
        job = session.fine_tune(spec)
        echo(f"  job {job.id} created; waiting (events and metrics go to the W&B fine-tune run)")
        job = session.wait()
        job_seconds = time.monotonic() - job_started
        echo(f"  job {job.id} {job.status} in {job_seconds:.1f} s -> {job.fine_tuned_model}")

        echo(f"  evaluating the fine-tune and {model} on {len(test)} test clauses")
        eval_report = session.evaluate(
            baselines=[model],
            evaluators=[exact_match, classification(labels=["Yes", "No"])],
            max_tokens=64,
        )

    report_json = eval_report.to_json()  # the one metrics schema of eval, run and demo --json
    comparisons = [c.model_dump(mode="json") for c in eval_report.comparisons]
    runs = dict(session.state.wandb_runs)
    sync_command = None
    if wandb_mode == "offline" and runs:
        sync_command = f"wandb sync {wandb_dir}/offline-run-*"
    return DemoResult(
        mode="emulator" if use_emulator else "openai",
        base_url=base_url,
        out_dir=str(out),
        state_path=str(state_path),
        n_records=len(records),
        n_train=len(train),
        n_test=len(test),
        validation=validation,
        job_id=job.id,
        job_status=job.status,
        fine_tuned_model=job.fine_tuned_model,
        job_seconds=round(job_seconds, 2),
        baseline=model,
        metrics=report_json["metrics"],
        metric_details=report_json["metric_details"],
        comparisons=comparisons,
        warnings=list(eval_report.warnings),
        wandb_mode=wandb_mode,
        wandb_dir=str(wandb_dir),
        wandb_runs=runs,
        sync_command=sync_command,
        elapsed_seconds=round(time.monotonic() - started, 2),
    )


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _chance_line(m: dict[str, Any]) -> str:
    """Classification: the scores that account for chance and the verdict against the majority class."""
    if m.get("beats_majority"):
        verdict = "beats"
    elif (m.get("accuracy_over_majority") or 0.0) <= 0:
        verdict = "does NOT beat"
    else:
        verdict = "is not clearly above"
    return (
        f"balanced acc {_fmt(m.get('balanced_accuracy'))}, macro-F1 {_fmt(m.get('macro_f1'))}, "
        f"kappa {_fmt(m.get('cohen_kappa'))}; {verdict} always {m.get('majority_class')!r} "
        f"({_fmt(m.get('majority_class_rate'))})"
    )


def format_summary(result: DemoResult) -> str:
    """The text the demo prints at the end."""
    v = result.validation
    where = (
        "local emulator (a stand-in, not a language model)" if result.mode == "emulator" else result.base_url
    )
    cost = v.get("estimated_cost_usd")
    lines = [
        "",
        f"finetune-wb demo — {where}",
        f"  data        {result.n_records} generated contract clauses -> {result.n_train} train / "
        f"{result.n_test} test",
        f"  validation  {'ok' if v.get('ok') else 'ERRORS'}: {v.get('n_examples')} examples, "
        f"{v.get('n_errors')} errors, ~{v.get('billed_tokens') or 0:,} billed tokens for {v.get('n_epochs')} "
        f"epochs (estimated cost {'unknown' if cost is None else f'${cost:,.4f}'})",
        f"  job         {result.job_id} {result.job_status} in {result.job_seconds:.1f} s",
        f"              -> {result.fine_tuned_model}",
        f"  evaluation  {result.n_test} test clauses; score [95% confidence interval]",
    ]
    labels = list(result.metrics)
    width = max((len(label) for label in labels), default=10)
    evaluators = list(next(iter(result.metrics.values()), {}))
    shown: set[str] = set()
    for name in evaluators:
        lines.append(f"    {name}")
        for label in labels:
            m = result.metric_details.get(label, {}).get(name, {})
            tag = "fine-tune" if label == result.fine_tuned_model else "baseline"
            lines.append(
                f"      {label:<{width}}  {_fmt(result.metrics[label].get(name))}  "
                f"[{_fmt(m.get('ci_low'))}, {_fmt(m.get('ci_high'))}]  ({tag})"
            )
            if m.get("majority_class_rate") is not None:
                lines.append(f"        {_chance_line(m)}")
                shown.add(f"{label} [{name}]: accuracy ")  # its majority-class warning says the same
    for c in result.comparisons:
        if c.get("difference") is None:
            continue
        pair = (
            "fine-tune - baseline"
            if c.get("model_a") == result.fine_tuned_model
            else f"{c.get('model_a')} - {c.get('model_b')}"
        )
        lines.append(
            f"    {c['evaluator']}: {pair} = {c['difference']:+.3f} "
            f"[{_fmt(c.get('ci_low'), '+.3f')}, {_fmt(c.get('ci_high'), '+.3f')}], "
            f"p = {_fmt_p(c.get('p_value'))} ({c.get('test')}, n = {c.get('n')})"
        )
    lines.extend(f"  warning     {w}" for w in result.warnings if not any(w.startswith(p) for p in shown))
    lines.append(f"  state       {result.state_path}")
    if result.wandb_mode == "offline":
        lines.append(f"  W&B runs    offline, in {result.wandb_dir}:")
        for step, run_dir in result.wandb_runs.items():
            lines.append(f"                {step:<10} {run_dir}")
        lines.append("              upload them later (after `wandb login`) with:")
        lines.append(f"                {result.sync_command}")
    else:
        lines.append(f"  W&B runs    project {DEMO_PROJECT!r} ({result.wandb_mode})")
    lines.append(f"  done in {result.elapsed_seconds:.1f} s")
    return "\n".join(lines)
