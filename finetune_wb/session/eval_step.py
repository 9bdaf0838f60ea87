"""The session's evaluation step: the fine-tune against its baselines on the test split, in a W&B eval run.

The answers go to the session's SQLite cache (its path is saved in the state file before the first
request), so an evaluation that was interrupted asks only for what is missing when it runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError
from finetune_wb.session.runs import artifact_ref
from finetune_wb.session.state import eval_summary

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation import EvalReport
    from finetune_wb.session.facade import FineTuneSession


def evaluate_step(
    session: FineTuneSession,
    *,
    baselines: Sequence[Any],
    evaluators: Any,
    models: Sequence[Any] | None,
    examples: Any,
    concurrency: int | None,
    rpm: float | None,
    tpm: float | None,
    max_tokens: int,
    temperature: float,
) -> EvalReport:
    """Body of :meth:`FineTuneSession.evaluate` (the caller holds the session's lock)."""
    from finetune_wb.evaluation import evaluate
    from finetune_wb.evaluation.engine import DEFAULT_CONCURRENCY

    st = session.state
    # one model may be given on its own ("gpt-4o-mini" must not become a model per character)
    baselines = list(baselines) if isinstance(baselines, (list, tuple)) else [baselines]
    if models is not None and not isinstance(models, (list, tuple)):
        models = [models]
    if models is None:
        if not st.fine_tuned_model:
            raise ConfigError(
                "no fine-tuned model yet: call session.wait() first, or pass models=[...] explicitly"
            )
        models = [st.fine_tuned_model]
    models = [*models, *baselines]
    if examples is None:
        examples = session._require_path("test")
    if not st.eval_cache_path:
        st.eval_cache_path = str(session.data_dir / "eval-cache.sqlite")
    st.eval_models = [getattr(m, "name", m) for m in models]
    session.data_dir.mkdir(parents=True, exist_ok=True)
    session._save()

    run = None
    lineage: list[Any] = []
    if session._tracking:
        lineage = [
            r for r in (artifact_ref(st.model_artifact), artifact_ref(st.test_artifact)) if r is not None
        ]
        run = session._init_run(
            "eval",
            name=f"eval-{st.job_id or st.session_id}",
            config={"models": st.eval_models, "job_id": st.job_id, "fine_tuned_model": st.fine_tuned_model},
        )
    try:
        report = evaluate(
            examples,
            models=list(models),
            evaluators=evaluators,
            client=session.client,
            concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
            rpm=rpm,
            tpm=tpm,
            max_tokens=max_tokens,
            temperature=temperature,
            cache=st.eval_cache_path,
            run=run,
            progress=session.progress,
            lineage=lineage,
        )
    except BaseException:
        if run is not None:
            run.finish(exit_code=1)
        raise
    if run is not None:
        run.finish()
    session._last_eval = report
    st.eval_summary = eval_summary(report)
    session._save()
    return report
