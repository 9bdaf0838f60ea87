"""The data-quality report: findings by line (train and test), counts by code, text and HTML summaries.

Every message is built from masked text only (see :mod:`.sensitive`), so printing, dumping or logging a
report never re-leaks a secret it found.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field, computed_field

QualitySeverity = Literal["error", "warning"]

# code -> what it means (for docs, summaries and the W&B table)
CODES: dict[str, str] = {
    "duplicate": "examples that are the same after normalisation",
    "near_duplicate": "examples whose prompts are nearly the same (MinHash estimate)",
    "leakage": "test examples whose prompt is also (nearly) a training prompt",
    "conflicting_answers": "the same prompt with different answers",
    "label_imbalance": "one label holds most of the examples",
    "unseen_label": "labels in the test file that no training example has",
    "secret": "API keys, tokens, private keys, passwords, high-entropy strings",
    "personal_data": "e-mail addresses, phone numbers, credit-card numbers, IBANs",
    "answer_length_outlier": "answers far longer or shorter than the rest",
    "dominant_system_prompt": "one system prompt variant in almost every example",
    "test_secret": "secrets in the test file (sent to the models and logged when evaluating)",
    "test_personal_data": "personal data in the test file",
}

DEFAULT_SEVERITY: dict[str, QualitySeverity] = {
    "leakage": "error",
    "secret": "error",
}

MAX_LINES_PER_FINDING = 1000


class QualityFinding(BaseModel):
    """One finding. ``lines`` are 1-based lines of the training file; ``test_lines`` of the test file."""

    code: str
    severity: QualitySeverity
    lines: list[int] = Field(default_factory=list)
    test_lines: list[int] = Field(default_factory=list)
    message: str

    def __str__(self) -> str:
        where = _lines("line", self.lines)
        if self.test_lines:
            where = (
                f"{where}; test {_lines('line', self.test_lines)}"
                if where
                else f"test {_lines('line', self.test_lines)}"
            )
        return f"{where or 'file'}: {self.severity}: [{self.code}] {self.message}"


def _lines(word: str, lines: list[int], limit: int = 8) -> str:
    """``line 3`` / ``lines 3, 9 (+2 more)``; without ``word`` just the numbers."""
    if not lines:
        return ""
    shown = ", ".join(map(str, lines[:limit]))
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    if not word:
        return f"{shown}{more}"
    return f"{word}{'s' if len(lines) > 1 else ''} {shown}{more}"


class QualityReport(BaseModel):
    """What :func:`~finetune_wb.validation.quality.check_quality` found. ``ok``: no finding is an error."""

    path: str | None = None
    test_path: str | None = None
    n_examples: int = 0
    n_test_examples: int = 0
    findings: list[QualityFinding] = Field(default_factory=list)
    counts: dict[str, int] = Field(
        default_factory=dict, description="finding code -> number of findings (including omitted ones)"
    )
    n_errors: int = Field(0, description="findings with severity 'error', including omitted ones")
    n_warnings: int = 0
    n_findings_omitted: int = Field(0, description="findings counted but not listed (the list is capped)")
    labels: dict[str, int] | None = Field(
        None, description="label -> training examples, when the answers look like labels (masked)"
    )
    options: dict[str, object] = Field(default_factory=dict, description="the thresholds the checks used")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.n_errors == 0

    @property
    def errors(self) -> list[QualityFinding]:
        return [f for f in self.findings if f.severity == "error"]

    def blocking(self, accept: Iterable[str] = ()) -> list[str]:
        """Codes with an error finding that ``accept`` does not name (what stops a session)."""
        accepted = set(accept)
        return sorted({f.code for f in self.findings if f.severity == "error" and f.code not in accepted})

    def raise_for_errors(self, *, accept: Iterable[str] = ()) -> QualityReport:
        """Raise :class:`~finetune_wb.errors.DataQualityError` for error findings not in ``accept``."""
        codes = self.blocking(accept)
        if not codes:
            return self
        from finetune_wb.errors import DataQualityError

        shown = "; ".join(str(f) for f in self.findings if f.severity == "error" and f.code in codes)
        where = f"{self.path}: " if self.path else ""
        raise DataQualityError(
            f"{where}the data-quality check found {', '.join(codes)} ({shown[:1500]}). Fix the data, or accept"
            f" the finding knowingly (accept_quality={{{', '.join(repr(c) for c in codes)}}}; on the command"
            f" line {' '.join(f'--accept-quality {c}' for c in codes)}; in a run config [quality] accept ="
            f" [{', '.join(repr(c) for c in codes)}]).",
            report=self,
        )

    def summary(self, *, max_findings: int = 50) -> str:
        head = f"Data quality of {self.path or '<examples>'}"
        if self.test_path:
            head += f" (test: {self.test_path})"
        lines = [
            head,
            f"  examples: {self.n_examples}    test examples: {self.n_test_examples}"
            f"    status: {'OK' if self.ok else 'ERRORS'}    errors: {self.n_errors}    warnings: {self.n_warnings}",
        ]
        if self.counts:
            lines.append("Finding counts:")
            lines += [f"  {code}: {n}" for code, n in sorted(self.counts.items())]
        if self.labels:
            total = sum(self.labels.values()) or 1
            shown = ", ".join(f"{k!r} {v} ({v / total:.0%})" for k, v in list(self.labels.items())[:12])
            lines.append(f"Labels: {shown}")
        if self.findings:
            lines.append("Findings:")
            lines += [f"  {f}" for f in self.findings[:max_findings]]
            hidden = max(0, len(self.findings) - max_findings) + self.n_findings_omitted
            if hidden:
                lines.append(f"  ... and {hidden} more (see counts)")
        else:
            lines.append("No findings.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        color = "#1a7f37" if self.ok else "#cf222e"
        rows = "".join(
            f"<tr><td>{esc(_lines('', f.lines))}</td><td>{esc(_lines('', f.test_lines))}</td>"
            f"<td>{esc(f.severity)}</td><td><code>{esc(f.code)}</code></td><td>{esc(f.message)}</td></tr>"
            for f in self.findings[:200]
        )
        counts = ", ".join(f"<code>{esc(c)}</code> {n}" for c, n in sorted(self.counts.items())) or "none"
        parts = [
            "<div class='finetune-wb-quality'>",
            f"<p><b>Data quality of {esc(self.path or '<examples>')}</b>: <b style='color:{color}'>"
            f"{'OK' if self.ok else 'ERRORS'}</b> — {self.n_examples} examples, {self.n_test_examples} test"
            f" examples, {self.n_errors} errors, {self.n_warnings} warnings</p>",
            f"<p>Findings: {counts}</p>",
        ]
        if rows:
            parts += [
                "<table><tr><th>lines</th><th>test lines</th><th>severity</th><th>code</th><th>message</th></tr>",
                rows,
                "</table>",
            ]
        parts.append("</div>")
        return "".join(parts)
