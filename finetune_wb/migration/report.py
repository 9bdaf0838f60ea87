"""Pick a replacement on data: :func:`migrate` scores candidates against a golden set.

Every candidate (a model plus a prompt strategy, see :mod:`finetune_wb.migration.candidates`) is asked every
golden prompt through the evaluation engine (cached: a re-run asks nothing), then scored twice: agreement
with the fine-tune's answers and, where the golden set kept references, accuracy against them (see
:mod:`finetune_wb.migration.scores`). Its latency (p50/p95 over the requests sent this run; None when every
answer came from the cache) and its cost per 1,000 requests (the tokens it used, priced with
:mod:`finetune_wb.evaluation.pricing`, overridable with ``prices=``) complete the row.

The recommendation is the cheapest candidate that answered every prompt and whose agreement is not
significantly worse than ``1 - tolerance`` (default 2 points); None when no candidate qualifies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_wb.migration.candidates import Candidate, CandidateSpec, build_candidates
from finetune_wb.migration.golden import GoldenSet, read_golden
from finetune_wb.migration.scores import mcnemar, percentile, same_answer, tolerance_p_value, wilson_interval

DEFAULT_TOLERANCE_POINTS = 2.0


class CandidateResult(BaseModel):
    """One candidate's row of the report."""

    name: str = Field(description="model plus strategy, e.g. gpt-4.1-mini+fewshot:8")
    model: str
    strategy: Literal["plain", "fewshot", "retrieval"]
    k: int
    rank: int = 0
    n: int = Field(description="golden prompts")
    n_answered: int
    n_unanswered: int
    agreement: float | None = Field(description="share of answered prompts with the fine-tune's answer")
    agreement_ci: list[float | None] = Field(description="95 % Wilson interval [low, high]")
    agreement_p_value: float | None = Field(description="one-sided test of agreement >= 1 - tolerance")
    within_tolerance: bool = Field(description="agreement not significantly below 1 - tolerance")
    accuracy: float | None = Field(description="share right against the references (None without references)")
    accuracy_ci: list[float | None]
    accuracy_n: int = Field(description="rows with a reference that the candidate answered")
    p_value: float | None = Field(description="McNemar's exact paired test against the fine-tune")
    p_value_test: Literal["mcnemar_accuracy", "mcnemar_agreement", "none"]
    fine_tune_only: int | None = Field(default=None, description="McNemar: rows only the fine-tune passed")
    candidate_only: int | None = Field(default=None, description="McNemar: rows only the candidate passed")
    cost_per_1k_requests: float | None = Field(description="USD per 1,000 requests at the tokens it used")
    prompt_tokens: int
    completion_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_n: int = Field(description="requests the latency is measured over (cached answers have none)")
    n_cached: int
    n_requests: int
    first_error: str | None = None


class MigrationReport(BaseModel):
    """The result of :func:`migrate`: ranked candidates and the recommendation."""

    golden: str
    fine_tuned_model: str | None
    n_prompts: int
    n_references: int
    tolerance_points: float
    confidence: float
    fine_tune_accuracy: float | None = Field(description="the fine-tune's own accuracy on the references")
    fine_tune_accuracy_ci: list[float | None]
    candidates: list[CandidateResult] = Field(description="ranked: recommendable first, cheapest first")
    recommendation: str | None
    reason: str
    prices: dict[str, list[float]] = Field(description="USD per 1M (input, output) tokens used per model")
    elapsed_seconds: float
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def summary(self) -> str:
        from finetune_wb.migration.render import text_table

        return text_table(self)

    def to_markdown(self) -> str:
        from finetune_wb.migration.render import markdown

        return markdown(self)

    def to_html(self) -> str:
        from finetune_wb.migration.render import html_page

        return html_page(self)


def _score(
    cand: Candidate,
    golden: GoldenSet,
    rows: list[Any],
    tolerance: float,
    confidence: float,
    prices: dict[str, tuple[float, float]] | None,
    summary: Any,
) -> CandidateResult:
    from finetune_wb.evaluation.pricing import estimate_cost

    outputs = [r.output for r in rows]
    answered = [i for i, o in enumerate(outputs) if o is not None]
    agree = [same_answer(outputs[i], golden.rows[i].answer) for i in answered]
    n_agree = sum(agree)
    lo, hi = wilson_interval(n_agree, len(answered), confidence)
    tol_p = tolerance_p_value(n_agree, len(answered), tolerance)
    with_ref = [i for i in answered if golden.rows[i].reference is not None]
    cand_right = [same_answer(outputs[i], golden.rows[i].reference) for i in with_ref]
    ft_right = [same_answer(golden.rows[i].answer, golden.rows[i].reference) for i in with_ref]
    accuracy = sum(cand_right) / len(with_ref) if with_ref else None
    acc_lo, acc_hi = wilson_interval(sum(cand_right), len(with_ref), confidence)
    if with_ref:
        p, ft_only, cand_only = mcnemar(ft_right, cand_right)
        test: Literal["mcnemar_accuracy", "mcnemar_agreement", "none"] = "mcnemar_accuracy"
    elif answered:
        p, ft_only, cand_only = mcnemar([True] * len(agree), agree)
        test = "mcnemar_agreement"
    else:
        p, ft_only, cand_only, test = None, None, None, "none"  # type: ignore[assignment]
    p_tok = sum(rows[i].prompt_tokens for i in answered)
    c_tok = sum(rows[i].completion_tokens for i in answered)
    cost = estimate_cost(cand.spec.model, p_tok, c_tok, prices)
    latencies = [r.latency_ms for r in rows if getattr(r, "latency_ms", None) is not None]
    return CandidateResult(
        name=cand.name,
        model=cand.spec.model,
        strategy=cand.spec.strategy,
        k=cand.spec.k,
        n=len(rows),
        n_answered=len(answered),
        n_unanswered=len(rows) - len(answered),
        agreement=n_agree / len(answered) if answered else None,
        agreement_ci=[lo, hi],
        agreement_p_value=tol_p,
        within_tolerance=tol_p is not None and tol_p >= 1 - confidence,
        accuracy=accuracy,
        accuracy_ci=[acc_lo, acc_hi],
        accuracy_n=len(with_ref),
        p_value=p,
        p_value_test=test,
        fine_tune_only=ft_only,
        candidate_only=cand_only,
        cost_per_1k_requests=None if cost is None or not answered else cost / len(answered) * 1000,
        prompt_tokens=p_tok,
        completion_tokens=c_tok,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_n=len(latencies),
        n_cached=summary.n_cached,
        n_requests=summary.n_requests,
        first_error=next((r.error for r in rows if r.output is None), None),
    )


def _rank(results: list[CandidateResult]) -> tuple[list[CandidateResult], str | None, str]:
    def eligible(r: CandidateResult) -> bool:
        return r.within_tolerance and r.n_unanswered == 0 and r.n_answered > 0

    def key(r: CandidateResult) -> tuple[Any, ...]:
        cost = r.cost_per_1k_requests
        return (not eligible(r), cost is None, cost or 0.0, -(r.agreement or 0.0), r.name)

    ranked = sorted(results, key=key)
    for i, r in enumerate(ranked, start=1):
        r.rank = i
    best = next((r for r in ranked if eligible(r)), None)
    if best is None:
        incomplete = [r.name for r in results if r.n_unanswered]
        why = "no candidate's agreement is within the tolerance"
        if incomplete:
            why += (
                f" among those that answered every prompt ({', '.join(incomplete)} left prompts unanswered: "
            )
            why += "run again to ask only those)"
        return ranked, None, why
    cost = "unknown cost" if best.cost_per_1k_requests is None else f"${best.cost_per_1k_requests:.4f} per 1k"
    return (
        ranked,
        best.name,
        (
            f"{best.name} is the cheapest candidate ({cost}) whose agreement ({best.agreement:.1%}) is not "
            "significantly below the tolerance"
        ),
    )


def migrate(
    golden: str | Path,
    candidates: list[str | CandidateSpec],
    *,
    train: str | Path | None = None,
    client: Any = None,
    tolerance: float = DEFAULT_TOLERANCE_POINTS,
    confidence: float = 0.95,
    prices: dict[str, tuple[float, float]] | None = None,
    run: Any = None,
    markdown: str | Path | None = None,
    html: str | Path | None = None,
    **options: Any,
) -> MigrationReport:
    """Evaluate every candidate on the golden prompts and recommend a replacement.

    ``candidates``: specs ``MODEL``, ``MODEL+fewshot:K`` or ``MODEL+retrieval:K`` (the few-shot ones need
    ``train``, the fine-tune's training file). ``tolerance``: points of agreement a replacement may lose (2.0
    = 2 %). ``prices``: ``{model prefix: (USD per 1M input, per 1M output)}`` over the built-in table.
    ``run``: a W&B run to log the side-by-side table and the scores to (never finished here). ``markdown`` /
    ``html``: write the report there (atomically). Other keywords are evaluation options (``concurrency``,
    ``rpm``, ``cache``, ``progress``, ``max_tokens``, ...; see :class:`~finetune_wb.evaluation.EvalOptions`).
    """
    from finetune_wb._client import get_client
    from finetune_wb._paths import atomic_write_text
    from finetune_wb.evaluation import evaluate
    from finetune_wb.evaluation.pricing import price_per_million
    from finetune_wb.migration.errors import MigrationInputError

    if not 0 <= tolerance < 100:
        raise MigrationInputError(
            f"tolerance is in points of agreement, 0 <= tolerance < 100; got {tolerance}"
        )
    started = time.monotonic()
    gold = read_golden(golden)
    built = build_candidates(list(candidates), train=train)
    client = get_client(client)
    options.setdefault("progress", False)
    results: list[CandidateResult] = []
    answers: dict[str, list[str | None]] = {}
    for cand in built:
        examples = [
            {"messages": [*cand.messages_for(r.messages), {"role": "assistant", "content": r.answer or "-"}]}
            for r in gold.rows
        ]
        report = evaluate(examples, models=[cand.spec.model], client=client, prices=prices, **options)
        label = report.models[0].label
        rows = sorted((r for r in report.rows if r.model == label), key=lambda r: r.example_index)
        answers[cand.name] = [r.output for r in rows]
        results.append(_score(cand, gold, rows, tolerance / 100.0, confidence, prices, report.models[0]))
    ranked, best, reason = _rank(results)
    with_ref = [r for r in gold.rows if r.reference is not None]
    ft_right = sum(same_answer(r.answer, r.reference) for r in with_ref)
    ft_lo, ft_hi = wilson_interval(ft_right, len(with_ref), confidence)
    warnings = []
    if not with_ref:
        warnings.append(
            f"{gold.path}: no references kept beside the golden answers (no {gold.path.stem}.meta.json, or the "
            "prompts had no assistant message): accuracy is not scored, p_value compares agreement"
        )
    used_prices = {r.model: price_per_million(r.model, prices) for r in ranked}
    out = MigrationReport(
        golden=str(gold.path),
        fine_tuned_model=gold.model,
        n_prompts=len(gold.rows),
        n_references=len(with_ref),
        tolerance_points=tolerance,
        confidence=confidence,
        fine_tune_accuracy=ft_right / len(with_ref) if with_ref else None,
        fine_tune_accuracy_ci=[ft_lo, ft_hi],
        candidates=ranked,
        recommendation=best,
        reason=reason,
        prices={m: list(p) for m, p in used_prices.items() if p is not None},
        elapsed_seconds=time.monotonic() - started,
        warnings=warnings,
    )
    if markdown is not None:
        atomic_write_text(Path(markdown), out.to_markdown())
    if html is not None:
        atomic_write_text(Path(html), out.to_html())
    if run is not None:
        from finetune_wb.migration.render import log_to_wandb

        log_to_wandb(out, gold, answers, run)
    return out
