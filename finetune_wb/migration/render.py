"""Views of a :class:`~finetune_wb.migration.report.MigrationReport`: text, Markdown, HTML and a W&B run."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.migration.golden import GoldenSet

# The report's classes are not imported here (the report module imports this one): annotated loosely.
MigrationReport = Any
CandidateResult = Any

HEADERS = [
    "rank",
    "candidate",
    "agreement (95% CI)",
    "within tol.",
    "accuracy",
    "p (McNemar)",
    "$ / 1k req",
    "p50 ms",
    "p95 ms",
    "answered",
]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _cells(c: CandidateResult) -> list[str]:
    lo, hi = c.agreement_ci
    ci = "" if lo is None or hi is None else f" ({lo:.1%}-{hi:.1%})"
    return [
        str(c.rank),
        c.name,
        _pct(c.agreement) + ci,
        "yes" if c.within_tolerance else "no",
        _pct(c.accuracy),
        _num(c.p_value, ".3g"),
        _num(c.cost_per_1k_requests, ".4f"),
        _num(c.latency_p50_ms, ".0f"),
        _num(c.latency_p95_ms, ".0f"),
        f"{c.n_answered}/{c.n}",
    ]


def _intro(r: MigrationReport) -> list[str]:
    ft = r.fine_tuned_model or "the fine-tune"
    acc = (
        ""
        if r.fine_tune_accuracy is None
        else f"; its accuracy on the references: {r.fine_tune_accuracy:.1%}"
    )
    return [
        f"Golden set {r.golden}: {r.n_prompts} prompts answered by {ft} ({r.n_references} with references{acc}).",
        f"Tolerance: {r.tolerance_points:g} points of agreement at {r.confidence:.0%} confidence.",
    ]


def _closing(r: MigrationReport) -> str:
    head = f"Recommendation: {r.recommendation}" if r.recommendation else "Recommendation: none"
    return f"{head} -- {r.reason}."


def text_table(r: MigrationReport) -> str:
    rows = [HEADERS, *(_cells(c) for c in r.candidates)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [*_intro(r), ""]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines += ["", _closing(r), *(f"warning: {w}" for w in r.warnings)]
    return "\n".join(lines)


def markdown(r: MigrationReport) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Migration report",
        "",
        *_intro(r),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(esc(c) for c in _cells(cand)) + " |" for cand in r.candidates]
    lines += ["", f"**{_closing(r)}**", ""]
    lines += [
        "Agreement: same answer as the fine-tune (case, spacing and trailing punctuation ignored). "
        "Within tolerance: the one-sided binomial test cannot reject agreement >= 1 - tolerance. "
        "p: McNemar's exact paired test against the fine-tune (on accuracy when references exist). "
        "Cost: list prices per 1M tokens at the tokens each candidate used. Latency: requests sent this run.",
        "",
    ]
    if r.prices:
        lines += [
            "Prices used (USD per 1M input / output tokens): "
            + ", ".join(f"{m}: {p[0]:g} / {p[1]:g}" for m, p in r.prices.items()),
            "",
        ]
    lines += [f"> warning: {w}" for w in r.warnings]
    return "\n".join(lines).rstrip() + "\n"


def html_page(r: MigrationReport) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr"
        + (' class="best"' if c.name == r.recommendation else "")
        + ">"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(c))
        + "</tr>"
        for c in r.candidates
    )
    intro = "".join(f"<p>{html.escape(line)}</p>" for line in _intro(r))
    warns = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in r.warnings)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Migration report</title><style>'
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}tr.best{background:#e6ffe6}.warn{color:#a60}</style></head><body>"
        f"<h1>Migration report</h1>{intro}<table><tr>{head}</tr>{body}</table>"
        f"<p><strong>{html.escape(_closing(r))}</strong></p>{warns}</body></html>\n"
    )


def log_to_wandb(r: MigrationReport, gold: GoldenSet, answers: dict[str, list[str | None]], run: Any) -> None:
    """A side-by-side table (prompt, fine-tune, reference, each candidate) and each candidate's scores."""
    import wandb

    from finetune_wb.migration.scores import same_answer
    from finetune_wb.schema import content_text

    names = [c.name for c in r.candidates]
    columns: list[str | int] = ["prompt", "fine_tune", "reference"]
    for n in names:
        columns += [n, f"{n} agrees"]
    table = wandb.Table(columns=columns)
    for i, row in enumerate(gold.rows):
        users = [m for m in row.messages if m.get("role") == "user"]
        prompt = content_text(users[-1].get("content")) if users else ""
        cells: list[Any] = [prompt, row.answer, row.reference]
        for n in names:
            out = answers[n][i]
            cells += [out, same_answer(out, row.answer)]
        table.add_data(*cells)
    run.log({"migration/side_by_side": table})
    for c in r.candidates:
        for key in (
            "agreement",
            "accuracy",
            "p_value",
            "cost_per_1k_requests",
            "latency_p50_ms",
            "latency_p95_ms",
        ):
            value = getattr(c, key)
            if value is not None:
                run.summary[f"{c.name}/{key}"] = value
    run.summary["recommendation"] = r.recommendation or ""
    run.config.update(
        {
            "migration": {
                "golden": r.golden,
                "fine_tuned_model": r.fine_tuned_model,
                "tolerance_points": r.tolerance_points,
                "candidates": names,
            }
        },
        allow_val_change=True,
    )
