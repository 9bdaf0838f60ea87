"""The session's evaluation step: the fine-tune against its baselines on the test split, in a W&B eval run.

The step works on a :class:`~finetune_wb.session.context.StepContext`; the session's ``evaluate`` holds its
lock and calls it. The answers go to the session's SQLite cache (its path is saved in the state file before
the first request), so an evaluation that was interrupted asks only for what is missing when it runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError
from finetune_wb.session.runs import artifact_ref
from finetune_wb.session.state import eval_summary

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation import EvalOptions, EvalReport
    from finetune_wb.session.context import StepContext


def evaluate_step(
    ctx: StepContext,
    *,
    baselines: Sequence[Any],
    evaluators: Any,
    models: Sequence[Any] | None,
    examples: Any,
    options: EvalOptions,
) -> EvalReport:
    """Body of :meth:`FineTuneSession.evaluate`.

    ``options`` are the caller's; the session fills in its client and progress setting where the caller
    set none, and always its own cache file, W&B run and lineage (set by the caller, they are an error).
    """
    from finetune_wb import evaluation
    from finetune_wb.evaluation.options import SESSION_OWNED

    owned = sorted(SESSION_OWNED & options.model_fields_set)
    if owned:
        raise ConfigError(
            f"session.evaluate sets {', '.join(owned)} itself (its answer cache, its W&B eval run and their "
            "lineage); call finetune_wb.evaluate(...) to evaluate with your own"
        )
    st = ctx.state
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
        examples = ctx.require_path("test")
    if not st.eval_cache_path:
        st.eval_cache_path = str(ctx.data_dir / "eval-cache.sqlite")
    st.eval_models = [getattr(m, "name", m) for m in models]
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    ctx.save()

    run = None
    lineage: list[Any] = []
    if ctx.runs.enabled:
        lineage = [
            r for r in (artifact_ref(st.model_artifact), artifact_ref(st.test_artifact)) if r is not None
        ]
        run = ctx.runs.start(
            "eval",
            name=f"eval-{st.job_id or st.session_id}",
            # ``models`` (role -> model id) is written by the report's logging; the list is known already
            config={
                "eval_models": st.eval_models,
                "job_id": st.job_id,
                "fine_tuned_model": st.fine_tuned_model,
            },
        )
    session_values: dict[str, Any] = {"cache": st.eval_cache_path, "run": run, "lineage": lineage}
    if "client" not in options.model_fields_set:
        session_values["client"] = ctx.client
    if "progress" not in options.model_fields_set:
        session_values["progress"] = ctx.progress
    try:
        report = evaluation.evaluate(
            examples,
            models=list(models),
            evaluators=evaluators,
            options=options.model_copy(update=session_values),
        )
    except BaseException:
        if run is not None:
            run.finish(exit_code=1)
        raise
    if run is not None:
        run.finish()
        ctx.runs.finished("eval")
    ctx.last_eval = report
    st.eval_summary = eval_summary(report)
    ctx.save()
    return report
