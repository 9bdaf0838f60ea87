"""Building an :class:`~finetune_wb.evaluation.report.EvalReport` from the answers and their scores.

Per model: rows, usage and estimated cost, and each evaluator's metric (mean, bootstrap interval, extra
details from ``aggregate``, which gets ``seed=`` when it takes one; classification's chance-aware scores are
lifted into the :class:`Metric`, and a model that does not clearly beat the majority class gets a warning);
per pair of models and evaluator: the paired comparison (McNemar's exact test
for binary scores, a paired bootstrap otherwise) over the rows both models answered.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation import stats
from finetune_wb.evaluation.refusals import REFUSED_TAIL
from finetune_wb.evaluation.report import (
    Comparison,
    EvalReport,
    EvaluatorInfo,
    ExampleInfo,
    Metric,
    ModelSummary,
    RowResult,
)
from finetune_wb.evaluation.tool_calls import public_calls, reference_calls, render_calls

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.answering import Answer
    from finetune_wb.evaluation.scoring import Scored
    from finetune_wb.evaluation.targets import ResolvedModel
    from finetune_wb.schema import ChatExample

__all__ = ["build_report"]


def _last_user_text(example: ChatExample) -> str:
    for m in reversed(example.prompt_messages()):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _none_if_nan(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def build_report(
    *,
    examples: Sequence[ChatExample],
    resolved: Sequence[ResolvedModel],
    answers: Sequence[Sequence[Answer]],
    scored: Scored,
    evaluators: Sequence[Any],
    params: dict[str, Any],
    seed: int,
    prices: dict[str, tuple[float, float]] | None,
    elapsed: float,
    source: str,
) -> EvalReport:
    from finetune_wb.evaluation.pricing import estimate_cost

    warnings: list[str] = list(scored.failures)
    infos = []
    for ev in evaluators:
        given = [
            s for per_model in scored.scores for row in per_model for n, s in row.items() if n == ev.name
        ]
        scored_values = [s for s in given if s.value is not None]
        binary = bool(scored_values) and all(s.binary for s in scored_values)
        infos.append(
            EvaluatorInfo(
                name=ev.name,
                type=type(ev).__name__ if type(ev).__name__ != "FunctionEvaluator" else "function",
                params=_jsonable_params(getattr(ev, "params", {})),
                binary=binary,
            )
        )
    binary_by_name = {i.name: i.binary for i in infos}

    rows: list[RowResult] = []
    models: list[ModelSummary] = []
    metrics: dict[str, dict[str, Metric]] = {}
    for m, r in enumerate(resolved):
        per_model = answers[m]
        for i, a in enumerate(per_model):
            sc = scored.scores[m][i]
            rows.append(
                RowResult(
                    example_index=i,
                    model=r.label,
                    output=a.output,
                    error=a.error,
                    scores={n: s.value for n, s in sc.items() if s.value is not None},
                    labels={n: s.label for n, s in sc.items() if s.label is not None},
                    notes={
                        n: s.explanation or ("not scored" if s.value is None else "")
                        for n, s in sc.items()
                        if s.explanation or s.value is None
                    },
                    cached=a.cached,
                    prompt_tokens=a.prompt_tokens,
                    completion_tokens=a.completion_tokens,
                    latency_ms=a.latency_ms,
                    tool_calls=public_calls(a.tool_calls),
                    refusal=a.refusal,
                    finish_reason=a.finish_reason,
                    turn=getattr(examples[i], "turn", None),
                )
            )
        answered = [a for a in per_model if a.output is not None]
        prompt_tokens = sum(a.prompt_tokens for a in answered)
        completion_tokens = sum(a.completion_tokens for a in answered)
        models.append(
            ModelSummary(
                label=r.label,
                model=r.target.name,
                base_url=r.base_url,
                n_rows=len(per_model),
                n_answered=len(answered),
                n_unanswered=len(per_model) - len(answered),
                n_cached=sum(1 for a in per_model if a.cached),
                n_requests=r.counts.requests,
                n_retries=r.counts.retries,
                n_rate_limited=r.counts.rate_limited,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                estimated_cost_usd=estimate_cost(r.target.name, prompt_tokens, completion_tokens, prices),
            )
        )
        refused = [a.error for a in per_model if a.error and a.error.endswith(REFUSED_TAIL)]
        if refused:
            warnings.append(
                f"{r.label}: {len(per_model) - len(answered)} of {len(per_model)} rows unanswered: "
                + refused[0].removeprefix("not asked: ")
            )
        elif len(answered) < len(per_model):
            warnings.append(
                f"{r.label}: {len(per_model) - len(answered)} of {len(per_model)} rows unanswered "
                "(left out of its metrics; run again to retry them)"
            )
        metrics[r.label] = {}
        for ev in evaluators:
            pairs = [
                (s.value, s, examples[i].target)
                for i in range(len(per_model))
                if (s := scored.scores[m][i].get(ev.name)) is not None and s.value is not None
            ]
            values = [float(p[0]) for p in pairs]
            low, high = stats.bootstrap_ci(values, seed=seed)
            details: dict[str, Any] = {}
            if hasattr(ev, "aggregate") and pairs:
                kwargs = {"seed": seed} if _takes_seed(ev.aggregate) else {}
                details = ev.aggregate([p[1] for p in pairs], [p[2] for p in pairs], **kwargs)
            metric = Metric(
                value=stats.mean(values) if values else None,
                ci_low=_none_if_nan(low),
                ci_high=_none_if_nan(high),
                n=len(values),
                n_unscored=len(per_model) - len(values),
                details=details,
                **Metric.chance_fields(details),
            )
            metrics[r.label][ev.name] = metric
            if (warning := metric.chance_warning(r.label, ev.name)) is not None:
                warnings.append(warning)

    comparisons: list[Comparison] = []
    for (ma, ra), (mb, rb) in itertools.combinations(enumerate(resolved), 2):
        same = ra.target.name == rb.target.name and ra.base_url == rb.base_url
        if same:
            warnings.append(
                f"{ra.label} and {rb.label} are the same model ({ra.target.name} at {ra.base_url}); "
                "their comparison says nothing about a fine-tune - check the model ids"
            )
        for ev in evaluators:
            comparisons.append(
                _compare(ev.name, binary_by_name[ev.name], ra.label, rb.label, scored, ma, mb, seed, same)
            )
    return EvalReport(
        source=source,
        params=params,
        seed=seed,
        elapsed_seconds=elapsed,
        models=models,
        evaluators=infos,
        examples=[_example_info(i, ex) for i, ex in enumerate(examples)],
        metrics=metrics,
        comparisons=comparisons,
        rows=rows,
        warnings=warnings,
        by_turn=_by_turn(examples, resolved, scored, evaluators),
    )


def _example_info(i: int, ex: ChatExample) -> ExampleInfo:
    calls = reference_calls(ex)
    return ExampleInfo(
        index=i,
        input=_last_user_text(ex),
        target=ex.target or render_calls(calls),
        reference_tool_calls=public_calls(calls),
        turn=getattr(ex, "turn", None),
        source_index=getattr(ex, "source_index", None),
    )


def _by_turn(
    examples: Sequence[ChatExample],
    resolved: Sequence[ResolvedModel],
    scored: Scored,
    evaluators: Sequence[Any],
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """model -> evaluator -> turn -> {value, n}, when the examples are turns (``turns="all"``)."""
    turns = [getattr(ex, "turn", None) for ex in examples]
    if all(t is None for t in turns):
        return {}
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for m, r in enumerate(resolved):
        per_ev: dict[str, dict[str, dict[str, Any]]] = {}
        for ev in evaluators:
            values: dict[int, list[float]] = {}
            for i, turn in enumerate(turns):
                s = scored.scores[m][i].get(ev.name)
                if turn is not None and s is not None and s.value is not None:
                    values.setdefault(turn, []).append(float(s.value))
            per_ev[ev.name] = {
                str(t): {"value": stats.mean(v), "n": len(v)} for t, v in sorted(values.items())
            }
        out[r.label] = per_ev
    return out


def _compare(
    name: str,
    binary: bool,
    label_a: str,
    label_b: str,
    scored: Scored,
    ma: int,
    mb: int,
    seed: int,
    same: bool,
) -> Comparison:
    a_vals: list[float] = []
    b_vals: list[float] = []
    for row_a, row_b in zip(scored.scores[ma], scored.scores[mb], strict=True):
        sa, sb = row_a.get(name), row_b.get(name)
        if sa is not None and sb is not None and sa.value is not None and sb.value is not None:
            a_vals.append(float(sa.value))
            b_vals.append(float(sb.value))
    base = {"evaluator": name, "model_a": label_a, "model_b": label_b, "n": len(a_vals), "same_model": same}
    if not a_vals:
        return Comparison(
            **base,
            mean_a=None,
            mean_b=None,
            difference=None,
            ci_low=None,
            ci_high=None,
            p_value=None,
            test="none",
        )
    diff, low, high, p_boot = stats.paired_bootstrap(a_vals, b_vals, seed=seed)
    measured: dict[str, Any] = {
        **base,
        "mean_a": stats.mean(a_vals),
        "mean_b": stats.mean(b_vals),
        "difference": diff,
        "ci_low": low,
        "ci_high": high,
    }
    if binary:
        only_a, only_b = stats.discordant_counts(a_vals, b_vals)
        p_value = stats.mcnemar_exact(only_a, only_b)
        return Comparison(**measured, p_value=p_value, test="mcnemar_exact", a_only=only_a, b_only=only_b)
    return Comparison(**measured, p_value=p_boot, test="paired_bootstrap")


def _takes_seed(fn: Any) -> bool:
    """An evaluator's ``aggregate`` may take ``seed=`` (the report's seed, for bootstrap intervals)."""
    import inspect

    try:
        return "seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in v):
            out[k] = list(v)
        else:
            out[k] = repr(v)
    return out
