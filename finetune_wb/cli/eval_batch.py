"""``finetune-wb eval --batch``: the Batch API flags of ``eval`` and what they change.

``--batch`` sends the rows missing from the answer cache through OpenAI's Batch API (half the price,
answers within 24 h), waits for the batches and reads their answers into the cache; the report, ``--json``
object (plus ``batches``: one ``{"id", "status", "request_counts", ...}`` per batch) and exit codes are
those of ``eval``. ``--no-wait`` submits and returns: exit 0 when nothing failed (the rows still in running
batches are listed on stderr, not counted as unanswered); run the same command again (``--resume`` says
so, it changes nothing) to collect: no new batch is created for rows already in one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import positive
from finetune_wb.evaluation.batch.settings import BATCH_MAX_REQUESTS

BATCH_ONLY = ("batch_max_requests", "batch_max_mb", "no_wait", "resume", "fallback", "batch_poll_interval")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batch mode (OpenAI Batch API: half the price, answers within 24 h)")
    group.add_argument(
        "--batch",
        action="store_true",
        help="ask the uncached rows through the Batch API instead of one request per row",
    )
    group.add_argument(
        "--batch-max-requests",
        type=_int_in(1, BATCH_MAX_REQUESTS),
        default=None,
        metavar="N",
        help=f"requests per batch input file (default {BATCH_MAX_REQUESTS:,}, the API's limit)",
    )
    group.add_argument(
        "--batch-max-mb",
        type=_int_in(1, 100_000),
        default=None,
        metavar="MB",
        help="megabytes per batch input file (default 200, the API's limit)",
    )
    group.add_argument(
        "--no-wait",
        action="store_true",
        help="submit the batches and return (exit 0); run the same command again to collect",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="collect batches submitted earlier (the same command without it does the same: rows already in "
        "a batch are never sent again)",
    )
    group.add_argument(
        "--fallback",
        choices=["sync"],
        default=None,
        help="'sync': ask rows whose batch line failed, expired or was cancelled synchronously in this run",
    )
    group.add_argument(
        "--batch-poll-interval",
        type=positive(float),
        default=None,
        metavar="S",
        help="first wait between status checks in seconds (default 5; backs off to 60)",
    )


def _int_in(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high:,}, got {text}")
        return value

    parse.__name__ = "int"
    return parse


def batch_kwargs(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``evaluate`` keywords of the batch flags ({} without --batch); None (after an ``error:`` line on
    stderr) when a batch flag is given without ``--batch`` or batch mode has no cache."""
    given = [
        "--" + name.replace("_", "-") for name in BATCH_ONLY if getattr(args, name, None) not in (None, False)
    ]
    if not args.batch:
        if given:
            print(f"error: {', '.join(given)} only apply with --batch", file=sys.stderr)
            return None
        return {}
    if args.no_cache:
        print(
            "error: --batch needs the answer cache (its batches are recorded there): drop --no-cache",
            file=sys.stderr,
        )
        return None
    from finetune_wb.evaluation.batch.settings import BatchOptions

    settings: dict[str, Any] = {"wait": not args.no_wait, "fallback": args.fallback}
    if args.batch_max_requests is not None:
        settings["max_requests"] = args.batch_max_requests
    if args.batch_max_mb is not None:
        settings["max_bytes"] = args.batch_max_mb * 1024 * 1024
    if args.batch_poll_interval is not None:
        settings["poll_interval"] = args.batch_poll_interval
    return {"mode": "batch", "batch": BatchOptions(**settings)}


def pending_rows(report: Any) -> int:
    """Rows waiting in batches that are still running (not failures: the next run collects them)."""
    from finetune_wb.evaluation.batch.runner import IN_BATCH_PREFIX

    return sum(1 for r in report.rows if r.output is None and (r.error or "").startswith(IN_BATCH_PREFIX))


def note_pending(report: Any, pending: int) -> None:
    running = [b for b in report.batches if b.status not in ("completed", "failed", "expired", "cancelled")]
    print(
        f"{pending} row(s) are in {len(running)} batch(es) still running "
        f"({', '.join(f'{b.id} {b.status}' for b in running[:5])}); run the same command again to collect them",
        file=sys.stderr,
    )
