"""The session's evaluation step: the fine-tune against its baselines on the test split, in a W&B eval run.

The step works on a :class:`~finetune_wb.session.context.StepContext`; the session's ``evaluate`` holds its
lock and calls it. The answers go to the session's SQLite cache (its path is saved in the state file before
the first request), so an evaluation that was interrupted asks only for what is missing when it runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError
from finetune_wb.session.runs import artifact_ref
from finetune_wb.session.state import eval_summary

logger = logging.getLogger(__name__)

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
    log_again: bool = False,
) -> EvalReport:
    """Body of :meth:`FineTuneSession.evaluate`.

    ``options`` are the caller's; the session fills in its client and progress setting where the caller
    set none, and always its own cache file, W&B run and lineage (set by the caller, they are an error).
    """
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
        from finetune_wb.session.deploy_step import deployed_name

        deployment = deployed_name(ctx)  # on Azure the fine-tune answers by its deployment's name
        if deployment is not None:
            from finetune_wb.evaluation.targets import ModelTarget

            models = [ModelTarget(deployment, label=f"{deployment} ({st.fine_tuned_model})")]
        else:
            from finetune_wb.providers.checks import profile_for

            if profile_for(ctx.client).deploy_step:
                raise ConfigError(
                    f"on Azure OpenAI the fine-tune {st.fine_tuned_model} answers only once deployed: call "
                    "session.deploy() first (Developer tier: no hosting fee), or pass models=['<deployment>']"
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
    if ctx.runs.enabled and st.eval_fingerprint and not log_again:
        # This session logged an evaluation before: answer first, and log only what is new.
        report = _evaluate(ctx, examples, models, evaluators, options, run=None, lineage=lineage)
        if _fully_cached(report) and _fingerprint(report) == st.eval_fingerprint:
            logger.info(
                "every answer came from the cache and this evaluation is already in the session's W&B eval run "
                "(%s); not logging it again (pass log_again=True to log it anyway)",
                st.wandb_runs.get("eval", "recorded in the state file"),
            )
            return _done(ctx, report)
        run = _start_eval_run(ctx)
        try:
            from finetune_wb.evaluation.wandb_log import log_report

            log_report(report, run, lineage=lineage)
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.finish()
        ctx.runs.finished("eval")
        st.eval_fingerprint = _fingerprint(report)
        return _done(ctx, report)
    if ctx.runs.enabled:
        run = _start_eval_run(ctx)
    try:
        report = _evaluate(ctx, examples, models, evaluators, options, run=run, lineage=lineage)
    except BaseException:
        if run is not None:
            run.finish(exit_code=1)
        raise
    if run is not None:
        run.finish()
        ctx.runs.finished("eval")
        st.eval_fingerprint = _fingerprint(report)
    return _done(ctx, report)


def _start_eval_run(ctx: StepContext) -> Any:
    st = ctx.state
    return ctx.runs.start(
        "eval",
        name=f"eval-{st.job_id or st.session_id}",
        # ``models`` (role -> model id) is written by the report's logging; the list is known already
        config={
            "eval_models": st.eval_models,
            "job_id": st.job_id,
            "fine_tuned_model": st.fine_tuned_model,
        },
    )


def _evaluate(
    ctx: StepContext,
    examples: Any,
    models: list[Any],
    evaluators: Any,
    options: EvalOptions,
    *,
    run: Any,
    lineage: list[Any],
) -> EvalReport:
    from finetune_wb import evaluation

    session_values: dict[str, Any] = {"cache": ctx.state.eval_cache_path, "run": run, "lineage": lineage}
    if "client" not in options.model_fields_set:
        session_values["client"] = ctx.client
    if "progress" not in options.model_fields_set:
        session_values["progress"] = ctx.progress
    return evaluation.evaluate(
        examples,
        models=list(models),
        evaluators=evaluators,
        options=options.model_copy(update=session_values),
    )


def _fully_cached(report: EvalReport) -> bool:
    return bool(report.ok) and all(m.n_requests == 0 for m in report.models)


def _fingerprint(report: EvalReport) -> str:
    from finetune_wb.evaluation.wandb_log import eval_fingerprint

    return eval_fingerprint(report)


def _done(ctx: StepContext, report: EvalReport) -> EvalReport:
    ctx.last_eval = report
    ctx.state.eval_summary = eval_summary(report)
    ctx.save()
    return report
