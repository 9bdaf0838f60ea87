"""The data-quality report in W&B: counts in the dataset artifact's metadata, a findings table, and the
examples table masked when the report found secrets or personal data."""

from __future__ import annotations

from typing import Any

from finetune_wb._secrets import scrub

FINDING_COLUMNS: list[str | int] = ["code", "severity", "lines", "test_lines", "message"]


def quality_metadata(report: Any) -> dict[str, Any]:
    """The report's counts and totals (duck-typed: the validation stage owns the model).

    The counts are a list of ``{"code", "n"}``: as a dict, the ``secret`` count would be dropped by
    :func:`~finetune_wb._secrets.scrub` (it removes every key named like a credential).
    """
    counts = dict(getattr(report, "counts", {}) or {})
    return scrub(
        {
            "ok": bool(getattr(report, "ok", True)),
            "counts": [{"code": code, "n": n} for code, n in sorted(counts.items())],
            "n_errors": int(getattr(report, "n_errors", 0)),
            "n_warnings": int(getattr(report, "n_warnings", 0)),
            "n_test_examples": int(getattr(report, "n_test_examples", 0)),
            "labels": getattr(report, "labels", None),
        }
    )


def needs_masking(report: Any) -> bool:
    counts = getattr(report, "counts", None) or {}
    return bool(counts.get("secret") or counts.get("personal_data"))


def masked(value: Any) -> Any:
    """``value`` (JSON-like) with secrets and personal data masked in every string, keys included (the
    label balance of a file whose answers are e-mail addresses, say)."""
    from finetune_wb.validation.quality.sensitive import Scanner, mask_text

    scanner = Scanner(allow=())

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return mask_text(v, scanner)
        if isinstance(v, dict):
            return {walk(k) if isinstance(k, str) else k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)


def findings_table(report: Any) -> Any:
    """A ``wandb.Table``: one row per finding (lines as comma-separated text; messages are already masked)."""
    import wandb

    rows = [
        [
            f.code,
            f.severity,
            ", ".join(map(str, f.lines)),
            ", ".join(map(str, f.test_lines)),
            f.message,
        ]
        for f in getattr(report, "findings", [])
    ]
    return wandb.Table(columns=FINDING_COLUMNS, data=scrub(rows))


def masked_examples_table(data: bytes, *, max_rows: int | None) -> Any:
    """The examples table with every secret and personal datum in its cells masked."""
    import wandb

    from finetune_wb.tracking.tables import COLUMNS, example_rows
    from finetune_wb.validation.quality.sensitive import Scanner, mask_text

    scanner = Scanner(allow=())
    rows = [
        [mask_text(cell, scanner) if isinstance(cell, str) else cell for cell in row]
        for row in example_rows(data, max_rows=max_rows)
    ]
    return wandb.Table(columns=COLUMNS, data=scrub(rows))
