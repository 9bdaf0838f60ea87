"""What a dataset artifact's metadata says about its data: counts, message shapes, label balance, and the
parts of the validator's report worth keeping with it.

Any JSONL shape is accepted (chat, DPO, legacy completions, lines that are not JSON); nothing here needs
wandb.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from finetune_wb._secrets import scrub
from finetune_wb.tracking.tables import INVALID, describe, iter_records, target_text

logger = logging.getLogger("finetune_wb.tracking")

MAX_LABELS = 20
"""Past this many distinct last answers, they are not labels: label balance is not reported."""


def dataset_statistics(data: bytes) -> dict[str, Any]:
    """Counts, message shape and label balance of a JSONL training file (chat or DPO, any shape)."""
    formats: Counter[str] = Counter()
    targets: Counter[str] = Counter()
    n_lines = n_invalid = n_tools = n_targets = 0
    min_msgs, max_msgs, sum_msgs, n_with_msgs = 0, 0, 0, 0
    for _, obj in iter_records(data):
        n_lines += 1
        if obj is INVALID:
            n_invalid += 1
            continue
        fmt, n_messages, has_tools = describe(obj)
        formats[fmt] += 1
        n_tools += has_tools
        if n_messages:
            min_msgs = n_messages if not n_with_msgs else min(min_msgs, n_messages)
            max_msgs = max(max_msgs, n_messages)
            sum_msgs += n_messages
            n_with_msgs += 1
        if fmt == "chat" and (target := target_text(obj)) is not None:
            n_targets += 1
            if len(targets) <= MAX_LABELS:  # past that these are not labels: stop counting distinct answers
                targets[target.strip()] += 1
    stats: dict[str, Any] = {
        "n_examples": n_lines - n_invalid,
        "n_lines": n_lines,
        "n_invalid_lines": n_invalid,
        "formats": dict(formats),
        "format": (formats.most_common(1)[0][0] if len(formats) == 1 else "mixed") if formats else "empty",
        "n_with_tools": n_tools,
    }
    if n_with_msgs:
        stats["messages_per_example"] = {
            "min": min_msgs,
            "mean": round(sum_msgs / n_with_msgs, 3),
            "max": max_msgs,
        }
    if (
        targets
        and len(targets) <= MAX_LABELS
        and len(targets) * 2 <= n_targets
        and all(len(t) <= 64 for t in targets)
    ):
        stats["label_balance"] = dict(sorted(targets.items(), key=lambda kv: (-kv[1], kv[0])))
        stats["n_labels"] = len(targets)
    return stats


def report_metadata(report: Any) -> dict[str, Any]:
    """The parts of a ValidationReport worth keeping with the data (duck-typed: the validator owns the model)."""
    out: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    for attr in ("ok", "n_examples", "format", "n_epochs", "estimated_cost_usd"):
        value = getattr(report, attr, None)
        if value is not None and not callable(value):
            validation[attr] = value
    errors = getattr(report, "errors", None)
    if errors is not None:
        validation["n_errors"] = len(errors)
    issues = getattr(report, "issues", None)
    if issues is not None:
        validation["n_issues"] = len(issues)
        validation["issue_codes"] = dict(Counter(str(getattr(i, "code", "?")) for i in issues))
    summary = getattr(report, "summary", None)
    if callable(summary):
        try:
            validation["summary"] = str(summary())
        except Exception as exc:  # a report that cannot summarise itself must not stop tracking
            logger.debug("report.summary() failed: %s", exc)
    if validation:
        out["validation"] = validation
    tokens = getattr(report, "tokens", None)
    if tokens is not None:
        out["tokens"] = tokens.model_dump(mode="json") if hasattr(tokens, "model_dump") else tokens
        billed = getattr(tokens, "billed", None)
        if billed is not None:
            out["estimated_billed_tokens"] = billed
    return json.loads(json.dumps(scrub(out), default=str))
