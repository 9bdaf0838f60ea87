"""The validator's result: issues by line, token statistics, epochs, billed tokens and cost."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, computed_field, model_serializer

from finetune_wb.validation.quality_report import QualityReport

Severity = Literal["error", "warning"]


class ValidationIssue(BaseModel):
    """One problem. ``line`` is 1-based; None for file-level problems (empty file, too few examples...)."""

    line: int | None
    code: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.severity}: [{self.code}] {self.message}"


class Distribution(BaseModel):
    """Summary of one per-example number; percentiles are linear-interpolated (numpy's default)."""

    min: float = 0
    max: float = 0
    mean: float = 0
    median: float = 0
    p5: float = 0
    p95: float = 0

    @classmethod
    def of(cls, values: Sequence[int] | Any) -> Distribution:
        """Summarize integers (a list, an ``array.array`` or a numpy array).

        Small inputs are sorted in pure Python (importing numpy costs ~10 MiB of resident memory, a
        noticeable share of a streaming validation); above a million values numpy does it without
        boxing every number.
        """
        n = len(values)
        if n == 0:
            return cls()
        if n > 1_000_000:
            import numpy as np

            arr = np.asarray(values, dtype=np.float64)
            p5, median, p95 = np.percentile(arr, [5, 50, 95])
            return cls(
                min=float(arr.min()),
                max=float(arr.max()),
                mean=float(arr.mean()),
                median=float(median),
                p5=float(p5),
                p95=float(p95),
            )
        ordered = sorted(values)
        return cls(
            min=float(ordered[0]),
            max=float(ordered[-1]),
            mean=math.fsum(ordered) / n,
            median=_percentile(ordered, 50),
            p5=_percentile(ordered, 5),
            p95=_percentile(ordered, 95),
        )


def _usd(amount: float) -> str:
    """Dollars with cents, or with four decimals below one dollar (small files cost fractions of a cent)."""
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.4f}"


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of sorted data (numpy's default method)."""
    h = (len(ordered) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo]))


class TokenStats(BaseModel):
    total: int = Field(0, description="tokens of all examples (before truncation), one epoch")
    billed: int = Field(0, description="sum over examples of min(limit, tokens), times the epochs")
    billed_per_epoch: int = 0
    n_over_limit: int = Field(0, description="examples longer than the context limit (truncated in training)")
    context_limit: int = 0
    encoding: str = ""
    messages_per_example: Distribution = Field(default_factory=Distribution)
    per_example: Distribution = Field(default_factory=Distribution)
    assistant_per_example: Distribution = Field(default_factory=Distribution)


class ValidationReport(BaseModel):
    """Everything the validator found. ``ok`` is True when there is no error (warnings are allowed)."""

    path: str | None = None
    model: str
    format: Literal["chat", "dpo"] = "chat"
    n_examples: int = 0
    n_lines: int = 0
    issues: list[ValidationIssue] = Field(default_factory=list)
    issue_counts: dict[str, int] = Field(
        default_factory=dict, description="every issue code -> how often it occurred (including omitted ones)"
    )
    n_issues_omitted: int = Field(0, description="issues counted but not listed (the list is capped)")
    n_errors: int = Field(0, description="number of errors, including any not listed")
    n_warnings: int = Field(0, description="number of warnings, including any not listed")
    tokens: TokenStats = Field(default_factory=TokenStats)
    n_epochs: int = 0
    estimated_cost_usd: float | None = None
    price_per_million_tokens: float | None = None
    n_missing_system: int = Field(0, description="examples without a system message (as the seed reports)")
    n_missing_user: int = Field(0, description="examples without a user message")
    unreadable: bool = Field(False, description="the file could not be opened or read at all")
    quality: QualityReport | None = Field(
        None, description="the data-quality findings, when asked for (validate_file(..., quality=True))"
    )

    @model_serializer(mode="wrap")
    def _without_absent_quality(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("quality", 0) is None:
            del data["quality"]  # output without --quality stays as it was
        return data

    @property
    def errors(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return (
            self.n_errors == 0
            and not any(i.severity == "error" for i in self.issues)
            and (self.quality is None or self.quality.ok)
        )

    def raise_for_errors(self) -> ValidationReport:
        """Raise DataValidationError (carrying this report) when there is any error; else return self."""
        if self.ok:
            return self
        if self.n_errors == 0 and self.quality is not None:
            self.quality.raise_for_errors()
        from finetune_wb.errors import DataValidationError

        first = "; ".join(str(i) for i in self.errors[:3])
        more = f" (and {self.n_errors - 3} more)" if self.n_errors > 3 else ""
        where = f"{self.path}: " if self.path else ""
        raise DataValidationError(
            f"{where}{self.n_errors} validation error(s): {first}{more}. Fix them and validate again.",
            report=self,
        )

    def summary(self, *, max_issues: int = 50) -> str:
        """A readable text summary, like the seed notebook's printout, with the problems by line."""
        t = self.tokens
        lines = [
            f"Validation of {self.path or '<examples>'} for {self.model} ({self.format} format)",
            f"  examples: {self.n_examples}    status: {'OK' if self.ok else 'ERRORS'}"
            f"    errors: {self.n_errors}    warnings: {self.n_warnings}",
        ]
        if self.n_examples:
            lines.append(
                f"  examples missing a system message: {self.n_missing_system}"
                f"    missing a user message: {self.n_missing_user}"
            )
        if self.issue_counts:
            lines.append("Issue counts:")
            lines += [f"  {code}: {n}" for code, n in sorted(self.issue_counts.items())]
        if self.n_examples:
            lines.append("Distributions (min / max / mean / median / p5 / p95):")
            for label, d in (
                ("messages per example", t.messages_per_example),
                ("total tokens per example", t.per_example),
                ("assistant tokens per example", t.assistant_per_example),
            ):
                lines.append(
                    f"  {label}: {d.min:g} / {d.max:g} / {d.mean:.1f} / {d.median:g} / {d.p5:g} / {d.p95:g}"
                )
            lines.append(
                f"  {t.n_over_limit} examples may be over the {t.context_limit:,}-token limit;"
                " they will be truncated during fine-tuning"
            )
            lines.append(
                f"Dataset has ~{t.total:,} tokens ({t.encoding}); {t.billed_per_epoch:,} billed per epoch"
            )
            lines.append(f"By default, you'll train for {self.n_epochs} epochs on this dataset")
            lines.append(f"By default, you'll be charged for ~{t.billed:,} tokens")
            if self.estimated_cost_usd is not None:
                lines.append(
                    f"Estimated training cost: ${_usd(self.estimated_cost_usd)}"
                    f" (at ${self.price_per_million_tokens:g} per 1M tokens)"
                )
            else:
                lines.append("Estimated training cost: unknown (no price for this model; pass prices=)")
        if self.issues:
            lines.append("Problems:")
            lines += [f"  {issue}" for issue in self.issues[:max_issues]]
            hidden = max(0, len(self.issues) - max_issues) + self.n_issues_omitted
            if hidden > 0:
                lines.append(f"  ... and {hidden} more (see issue_counts)")
        if self.quality is not None:
            lines.append(self.quality.summary(max_findings=max_issues))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        t = self.tokens
        status = "OK" if self.ok else "ERRORS"
        color = "#1a7f37" if self.ok else "#cf222e"
        rows = "".join(
            f"<tr><td>{i.line if i.line is not None else '-'}</td><td>{esc(i.severity)}</td>"
            f"<td><code>{esc(i.code)}</code></td><td>{esc(i.message)}</td></tr>"
            for i in self.issues[:200]
        )
        dist_rows = "".join(
            f"<tr><td>{label}</td><td>{d.min:g}</td><td>{d.max:g}</td><td>{d.mean:.1f}</td>"
            f"<td>{d.median:g}</td><td>{d.p5:g}</td><td>{d.p95:g}</td></tr>"
            for label, d in (
                ("messages", t.messages_per_example),
                ("tokens", t.per_example),
                ("assistant tokens", t.assistant_per_example),
            )
        )
        cost = "unknown" if self.estimated_cost_usd is None else f"${_usd(self.estimated_cost_usd)}"
        parts = [
            "<div class='finetune-wb-report'>",
            f"<p><b>{esc(self.path or '<examples>')}</b> for <code>{esc(self.model)}</code> ({self.format}): "
            f"<b style='color:{color}'>{status}</b> — {self.n_examples} examples, {self.n_errors} errors, "
            f"{self.n_warnings} warnings</p>",
            f"<p>{t.total:,} tokens ({esc(t.encoding)}), {self.n_epochs} epochs, {t.billed:,} billed tokens, "
            f"estimated cost {cost}; {t.n_over_limit} over the {t.context_limit:,}-token limit</p>",
            "<table><tr><th></th><th>min</th><th>max</th><th>mean</th><th>median</th><th>p5</th><th>p95</th></tr>",
            dist_rows,
            "</table>",
        ]
        if rows:
            parts += [
                "<table><tr><th>line</th><th>severity</th><th>code</th><th>message</th></tr>",
                rows,
                "</table>",
            ]
        if self.quality is not None:
            parts.append(self.quality._repr_html_())
        parts.append("</div>")
        return "".join(parts)
