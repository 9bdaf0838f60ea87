"""EvalReport: every row, every metric with its confidence interval, and every pairwise comparison.

Conventions: a metric is the mean score over the rows a model answered and an evaluator could score;
unanswered rows are counted (``n_unanswered``) but never scored as wrong. A comparison of models A and B
(in the order given to ``evaluate``) uses only the rows both answered; ``difference = mean(A) - mean(B)``.

This module is the report's shape and its views (JSON, pandas, text, HTML); building one from the answers
and their scores is :mod:`finetune_wb.evaluation.aggregate`.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class EvaluatorInfo(BaseModel):
    name: str
    type: str = Field(description="the evaluator's class or function name")
    params: dict[str, Any] = Field(default_factory=dict, description="its configuration arguments")
    binary: bool = Field(description="pass/fail scores (compared with McNemar's exact test)")


class ModelSummary(BaseModel):
    label: str = Field(description="the model's name in this report")
    model: str = Field(description="the model id sent to the server")
    base_url: str
    n_rows: int
    n_answered: int
    n_unanswered: int
    n_cached: int = Field(description="answers taken from the cache (no request this run)")
    n_requests: int = Field(description="HTTP requests made this run, retries included")
    n_retries: int
    n_rate_limited: int
    prompt_tokens: int = Field(description="over all answered rows, cached ones included")
    completion_tokens: int
    estimated_cost_usd: float | None = Field(description="list-price estimate; None for unknown models")


class Metric(BaseModel):
    value: float | None = Field(description="mean score")
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="rows scored")
    n_unscored: int = Field(description="rows unanswered or that the evaluator could not score")
    details: dict[str, Any] = Field(default_factory=dict, description="extra metrics (classification)")


class Comparison(BaseModel):
    evaluator: str
    model_a: str
    model_b: str
    n: int = Field(description="rows scored for both models")
    mean_a: float | None
    mean_b: float | None
    difference: float | None = Field(description="mean_a - mean_b")
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: Literal["mcnemar_exact", "paired_bootstrap", "none"]
    a_only: int | None = Field(default=None, description="binary: rows only A passed")
    b_only: int | None = Field(default=None, description="binary: rows only B passed")
    same_model: bool = False


class RowResult(BaseModel):
    example_index: int
    model: str = Field(description="the model's label")
    output: str | None
    error: str | None = Field(description="why the row has no answer (it is retried on the next run)")
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="evaluator -> score, for the evaluators that could score this answer (none when unanswered)",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="predicted labels per evaluator")
    notes: dict[str, str] = Field(default_factory=dict, description="explanations per evaluator")
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ExampleInfo(BaseModel):
    index: int
    input: str = Field(description="the last user message of the prompt")
    target: str


class EvalReport(BaseModel):
    """The result of :func:`finetune_wb.evaluate`.

    ``metrics[model][evaluator]`` is a :class:`Metric` (value, 95 % interval, counts, details);
    :meth:`metric` and :attr:`metric_values` give the headline numbers; :meth:`to_json` is what
    ``finetune-wb eval --json`` prints (there ``metrics`` holds the numbers, ``metric_details`` the objects).
    """

    source: str
    params: dict[str, Any]
    seed: int
    elapsed_seconds: float
    models: list[ModelSummary]
    evaluators: list[EvaluatorInfo]
    examples: list[ExampleInfo]
    metrics: dict[str, dict[str, Metric]] = Field(description="model label -> evaluator -> metric")
    comparisons: list[Comparison]
    rows: list[RowResult]
    warnings: list[str] = Field(default_factory=list)

    @property
    def n_unanswered(self) -> int:
        return sum(1 for r in self.rows if r.output is None)

    @property
    def ok(self) -> bool:
        """True when every model answered every row."""
        return self.n_unanswered == 0

    def metric(self, model: str, evaluator: str) -> float | None:
        """The headline number of one evaluator for one model (None when no row could be scored)."""
        return self.metrics[model][evaluator].value

    @property
    def metric_values(self) -> dict[str, dict[str, float | None]]:
        """``{model label: {evaluator: headline number}}`` — what ``--json`` prints as ``metrics``.

        The headline number is the mean score over the scored rows: for pass/fail evaluators the pass rate,
        for ``classification`` the accuracy (macro/micro F1 and the rest are in ``metrics[m][e].details``).
        """
        return {m: {e: metric.value for e, metric in per.items()} for m, per in self.metrics.items()}

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON object ``finetune-wb eval --json`` prints.

        Same keys as ``model_dump(mode="json")`` except that ``metrics`` maps model -> evaluator -> headline
        number (:attr:`metric_values`), and the full metric objects (value, ci_low, ci_high, n, n_unscored,
        details) move to ``metric_details``.
        """
        out = self.model_dump(mode="json")
        out["metric_details"] = out.pop("metrics")
        out["metrics"] = self.metric_values
        return out

    def comparison(self, model_a: str, model_b: str, evaluator: str) -> Comparison:
        for c in self.comparisons:
            if c.evaluator == evaluator and {c.model_a, c.model_b} == {model_a, model_b}:
                return c
        raise KeyError((model_a, model_b, evaluator))

    def to_pandas(self, *, kind: Literal["rows", "metrics", "comparisons"] = "rows") -> pd.DataFrame:
        """Rows (one per example and model, a column per evaluator), metrics or comparisons as a DataFrame."""
        import pandas as pd

        if kind == "metrics":
            return pd.DataFrame(
                [
                    {"model": m, "evaluator": e, **metric.model_dump(exclude={"details"})}
                    for m, per in self.metrics.items()
                    for e, metric in per.items()
                ]
            )
        if kind == "comparisons":
            return pd.DataFrame([c.model_dump() for c in self.comparisons])
        by_index = {e.index: e for e in self.examples}
        records = []
        for r in self.rows:
            ex = by_index[r.example_index]
            rec: dict[str, Any] = {
                "example_index": r.example_index,
                "model": r.model,
                "input": ex.input,
                "target": ex.target,
                "output": r.output,
                "error": r.error,
                "cached": r.cached,
            }
            rec.update(r.scores)
            records.append(rec)
        return pd.DataFrame(records)

    def summary(self) -> str:
        """A plain-text summary: metrics with 95 % intervals, comparisons, usage and warnings."""
        lines = [
            f"Evaluation of {len(self.examples)} examples ({self.source}) in {self.elapsed_seconds:.1f} s"
        ]
        for m in self.models:
            cost = f", ~${m.estimated_cost_usd:.4f}" if m.estimated_cost_usd is not None else ""
            lines.append(
                f"  {m.label}: {m.n_answered}/{m.n_rows} answered ({m.n_cached} cached, {m.n_requests} requests"
                f"), {m.prompt_tokens}+{m.completion_tokens} tokens{cost}"
            )
            for name, metric in self.metrics[m.label].items():
                lines.append(f"    {name}: {_fmt_metric(metric)}")
                for key in ("macro_f1", "micro_f1"):
                    if key in metric.details:
                        lines.append(f"      {key}: {metric.details[key]:.3f}")
        for c in self.comparisons:
            if c.difference is None:
                continue
            lines.append(
                f"  {c.model_a} vs {c.model_b} [{c.evaluator}]: difference {c.difference:+.3f} "
                f"(95% CI {c.ci_low:+.3f} .. {c.ci_high:+.3f}, n={c.n}), p={_fmt_p(c.p_value)} ({c.test})"
            )
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(e.name)}</th>" for e in self.evaluators)
        body = []
        for m in self.models:
            cells = "".join(
                f"<td>{esc(_fmt_metric(self.metrics[m.label][e.name]))}</td>" for e in self.evaluators
            )
            body.append(f"<tr><td>{esc(m.label)}</td><td>{m.n_answered}/{m.n_rows}</td>{cells}</tr>")
        parts = [
            f"<p><b>Evaluation</b> of {len(self.examples)} examples ({esc(self.source)})</p>",
            f"<table><tr><th>model</th><th>answered</th>{head}</tr>{''.join(body)}</table>",
        ]
        comps = [
            f"<tr><td>{esc(c.model_a)} vs {esc(c.model_b)}</td><td>{esc(c.evaluator)}</td>"
            f"<td>{c.difference:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]</td><td>{esc(_fmt_p(c.p_value))}</td>"
            f"<td>{esc(c.test)}</td></tr>"
            for c in self.comparisons
            if c.difference is not None
        ]
        if comps:
            parts.append(
                "<table><tr><th>comparison</th><th>evaluator</th><th>difference (95% CI)</th><th>p</th>"
                f"<th>test</th></tr>{''.join(comps)}</table>"
            )
        parts.extend(f"<p>⚠ {esc(w)}</p>" for w in self.warnings)
        return "\n".join(parts)


def _fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _fmt_metric(metric: Metric) -> str:
    if metric.value is None:
        return f"n/a (0 of {metric.n + metric.n_unscored} rows scored)"
    return f"{metric.value:.3f} [{metric.ci_low:.3f}, {metric.ci_high:.3f}] (n={metric.n})"
