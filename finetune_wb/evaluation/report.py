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

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from finetune_wb.evaluation.batch.settings import BatchSummary

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
    estimated_batch_cost_usd: float | None = Field(
        default=None, description="batch mode: the same tokens at the Batch API's discounted price"
    )


CHANCE_KEYS = (
    "accuracy",
    "majority_class",
    "majority_class_rate",
    "balanced_accuracy",
    "macro_f1",
    "cohen_kappa",
    "accuracy_over_majority",
    "beats_majority",
    "intervals",
)
"""The classification-only fields of a :class:`Metric` (left out of its JSON for other evaluators)."""


class Metric(BaseModel):
    """One evaluator's score for one model; classification adds what the accuracy must beat.

    For ``classification`` the fields from ``accuracy`` on are set (copied from ``details``): the
    majority-class rate of the references, balanced accuracy, macro-F1 and Cohen's kappa, each with a 95 %
    bootstrap interval in ``intervals``, and ``beats_majority`` — True only when the 95 % interval of
    ``accuracy - majority_class_rate`` (paired over rows) lies above 0. For other evaluators they are None and
    not serialised.
    """

    value: float | None = Field(description="mean score")
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="rows scored")
    n_unscored: int = Field(description="rows unanswered or that the evaluator could not score")
    details: dict[str, Any] = Field(default_factory=dict, description="extra metrics (classification)")
    accuracy: float | None = Field(default=None, description="classification: share of rows predicted right")
    majority_class: str | None = Field(default=None, description="classification: most frequent reference")
    majority_class_rate: float | None = Field(
        default=None, description="classification: accuracy of always answering the majority class"
    )
    balanced_accuracy: float | None = Field(default=None, description="classification: mean recall per class")
    macro_f1: float | None = Field(default=None, description="classification: mean F1 over the label set")
    cohen_kappa: float | None = Field(default=None, description="classification: agreement beyond chance")
    accuracy_over_majority: float | None = Field(
        default=None, description="classification: accuracy - majority_class_rate"
    )
    beats_majority: bool | None = Field(
        default=None,
        description="classification: the 95 % interval of accuracy - majority_class_rate lies above 0",
    )
    intervals: dict[str, list[float | None]] = Field(
        default_factory=dict, description="classification: name -> [low, high], 95 % bootstrap"
    )

    @model_serializer(mode="wrap")
    def _drop_unset_chance_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.majority_class_rate is None and self.accuracy is None:
            for key in CHANCE_KEYS:
                data.pop(key, None)
        return data

    @classmethod
    def chance_fields(cls, details: dict[str, Any]) -> dict[str, Any]:
        """The classification fields found in an evaluator's ``details`` (empty for other evaluators)."""
        if "majority_class_rate" not in details:
            return {}
        return {k: details.get(k) for k in CHANCE_KEYS if k != "intervals"} | {
            "intervals": dict(details.get("intervals") or {})
        }

    def chance_warning(self, model: str, evaluator: str) -> str | None:
        """The report warning for a classification score that does not clearly beat the majority class."""
        if self.beats_majority is not False or self.accuracy is None or self.majority_class_rate is None:
            return None
        always = f"always answering {self.majority_class!r}"
        low, high = self.intervals.get("accuracy_over_majority", [None, None])
        ci = "" if low is None or high is None else f" (95% CI of the difference {low:+.3f} .. {high:+.3f})"
        if self.accuracy <= self.majority_class_rate:
            return (
                f"{model} [{evaluator}]: accuracy {self.accuracy:.3f} does not beat {always} "
                f"({self.majority_class_rate:.3f}){ci}; balanced accuracy {_fmt_num(self.balanced_accuracy)}, "
                f"kappa {_fmt_num(self.cohen_kappa)}"
            )
        return (
            f"{model} [{evaluator}]: accuracy {self.accuracy:.3f} is above {always} "
            f"({self.majority_class_rate:.3f}) but not clearly{ci}"
        )


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
    latency_ms: float | None = Field(
        default=None, description="time of the request that answered it (None when cached or unanswered)"
    )
    tool_calls: list[dict[str, str]] = Field(
        default_factory=list,
        description='the answer\'s tool calls, [{"name", "arguments"}] with arguments as the model wrote them',
    )
    refusal: str | None = Field(default=None, description="the model's refusal message, if it refused")
    finish_reason: str | None = Field(
        default=None, description="why the answer ended (stop, length, tool_calls)"
    )
    turn: int | None = Field(default=None, description="the evaluated assistant turn (turns='all')")


class ExampleInfo(BaseModel):
    index: int
    input: str = Field(description="the last user message of the prompt")
    target: str = Field(description="the reference: its text, or its tool calls written name({...})")
    reference_tool_calls: list[dict[str, str]] = Field(
        default_factory=list, description='the reference\'s tool calls, [{"name", "arguments"}]'
    )
    turn: int | None = Field(default=None, description="the assistant turn evaluated (turns='all')")
    source_index: int | None = Field(default=None, description="the example the turn was cut from")


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
    by_turn: dict[str, dict[str, dict[str, dict[str, Any]]]] = Field(
        default_factory=dict,
        description="turns='all': model -> evaluator -> turn index -> {value, n} (mean score of that turn)",
    )
    batches: list[BatchSummary] = Field(
        default_factory=list, description="batch mode: the batches this run submitted, waited on or collected"
    )

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
            if r.tool_calls:  # only when a model called tools: a text-only evaluation keeps its columns
                rec["tool_calls"] = "\n".join(f"{c['name']}({c['arguments']})" for c in r.tool_calls)
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
            if m.estimated_batch_cost_usd is not None:
                cost += f" (~${m.estimated_batch_cost_usd:.4f} at the batch price)"
            lines.append(
                f"  {m.label}: {m.n_answered}/{m.n_rows} answered ({m.n_cached} cached, {m.n_requests} requests"
                f"), {m.prompt_tokens}+{m.completion_tokens} tokens{cost}"
            )
            for name, metric in self.metrics[m.label].items():
                lines.append(f"    {name}: {_fmt_metric(metric)}")
                lines.extend(_chance_lines(metric))
                lines.extend(_partial_credit_lines(metric))
                for turn, cell in (self.by_turn.get(m.label, {}).get(name) or {}).items():
                    lines.append(f"      turn {turn}: {_fmt_num(cell.get('value'))} (n={cell.get('n')})")
        for c in self.comparisons:
            if c.difference is None:
                continue
            lines.append(
                f"  {c.model_a} vs {c.model_b} [{c.evaluator}]: difference {c.difference:+.3f} "
                f"(95% CI {c.ci_low:+.3f} .. {c.ci_high:+.3f}, n={c.n}), p={_fmt_p(c.p_value)} ({c.test})"
            )
        for b in self.batches:
            counts = b.request_counts
            price = f", ${b.cost_usd:.4f} (sync ${b.sync_cost_usd:.4f})" if b.cost_usd is not None else ""
            if not price and b.estimated_cost_usd is not None:
                price = f", est. ${b.estimated_cost_usd:.4f} (sync ${b.estimated_sync_cost_usd:.4f})"
            lines.append(
                f"  batch {b.id} ({b.model}): {b.status}, {counts.get('completed', 0)}/"
                f"{counts.get('total', b.n_requests)} done, {counts.get('failed', 0)} failed{price}"
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


def with_metric_details(summary: dict[str, Any]) -> dict[str, Any]:
    """A report summary whose ``metrics`` holds metric objects -> the ``--json`` schema of every command.

    ``metrics[model][evaluator]`` becomes the headline number (``value``) and the objects move to
    ``metric_details[model][evaluator]``, as in :meth:`EvalReport.to_json`. A summary already in that shape
    (or without metrics) is returned unchanged.
    """
    metrics = summary.get("metrics")
    if not isinstance(metrics, dict) or "metric_details" in summary:
        return summary
    objects = {
        m: {e: to_plain(metric) for e, metric in per.items()}
        for m, per in metrics.items()
        if isinstance(per, dict)
    }
    numbers = {m: {e: obj.get("value") for e, obj in per.items()} for m, per in objects.items()}
    return {**summary, "metrics": numbers, "metric_details": objects}


def to_plain(metric: Any) -> dict[str, Any]:
    """A :class:`Metric` (or its dumped dict) as a plain JSON dict."""
    if isinstance(metric, Metric):
        return metric.model_dump(mode="json")
    return dict(metric) if isinstance(metric, dict) else {"value": metric}


def _fmt_num(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _fmt_interval(metric: Metric, key: str, spec: str = ".3f") -> str:
    low, high = metric.intervals.get(key, [None, None])
    if low is None or high is None:
        return ""
    return f" [{low:{spec}}, {high:{spec}}]"


def _chance_lines(metric: Metric) -> list[str]:
    """Two compact lines: the scores that account for chance, and the verdict against the majority class."""
    if metric.majority_class_rate is None:
        return []
    scores = ", ".join(
        f"{label} {_fmt_num(getattr(metric, key))}{_fmt_interval(metric, key)}"
        for key, label in (
            ("balanced_accuracy", "balanced accuracy"),
            ("macro_f1", "macro-F1"),
            ("cohen_kappa", "kappa"),
        )
    )
    verdict = (
        "beats it"
        if metric.beats_majority
        else ("does NOT beat it" if (metric.accuracy_over_majority or 0.0) <= 0 else "not clearly above it")
    )
    return [
        f"      {scores}",
        f"      vs always {metric.majority_class!r} (majority class, {metric.majority_class_rate:.3f}): "
        f"{_fmt_num(metric.accuracy_over_majority, '+.3f')}{_fmt_interval(metric, 'accuracy_over_majority', '+.3f')}"
        f" -> {verdict}",
    ]


_PARTIAL_KEYS = ("name_accuracy", "argument_accuracy", "all_fields_right", "win_rate")


def _partial_credit_lines(metric: Metric) -> list[str]:
    """Tool-call, field and preference details in one line (name/argument accuracy, per field, win rate)."""
    d = metric.details
    parts = [f"{k.replace('_', ' ')} {_fmt_num(d[k])}" for k in _PARTIAL_KEYS if k in d]
    if "wins" in d:
        parts.append(f"{d['wins']} wins, {d['losses']} losses, {d['ties']} ties")
    lines = [f"      {', '.join(parts)}"] if parts else []
    for key, label in (("per_function", "function"), ("per_field", "field")):
        for item, cell in (d.get(key) or {}).items():
            scores = ", ".join(
                f"{k.replace('_', ' ')} {_fmt_num(v)}" for k, v in cell.items() if "accuracy" in k
            )
            lines.append(f"      {label} {item} (n={cell.get('n')}): {scores}")
    return lines


def _fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _fmt_metric(metric: Metric) -> str:
    if metric.value is None:
        return f"n/a (0 of {metric.n + metric.n_unscored} rows scored)"
    return f"{metric.value:.3f} [{metric.ci_low:.3f}, {metric.ci_high:.3f}] (n={metric.n})"
