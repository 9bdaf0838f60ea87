"""`finetune-wb validate PATH`: check a training file and estimate tokens, epochs and cost.

Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json


def _bounded(kind: type, low: float, high: float | None, what: str) -> Any:
    """An argparse type: a number of ``kind`` in [low, high]; argparse turns the error into a usage line."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value < low or (high is not None and value > high) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a JSONL training file; report problems by line, tokens, epochs and estimated cost",
        description=(
            "Check a chat or DPO training file the way OpenAI will, without uploading it. Exit code 0: no "
            "errors (warnings allowed); 1: errors found; 2: the file cannot be read."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the JSONL training file")
    parser.add_argument(
        "--model",
        default="gpt-4o-mini-2024-07-18",
        help="the model to fine-tune (decides the tokenizer, context limit and price); an id that is not a"
        " known one is an unknown_model warning naming the closest known ids",
    )
    parser.add_argument(
        "--method",
        choices=("supervised", "dpo", "reinforcement"),
        default=None,
        help="force the file format (default: detect it from the first line)",
    )
    parser.add_argument(
        "--max-cost",
        type=_bounded(float, 0, None, "a number of US dollars >= 0"),
        default=None,
        metavar="USD",
        help="fail when the estimated cost is higher",
    )
    parser.add_argument(
        "--n-epochs",
        type=_bounded(int, 1, 50, "an integer from 1 to 50"),
        default=None,
        help="epochs to estimate with (default: the rule)",
    )
    parser.add_argument(
        "--max-issues",
        type=_bounded(int, 0, None, "an integer >= 0"),
        default=1000,
        help="list at most this many issues (all are counted)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from finetune_wb.validation.validate import validate_file

    report = validate_file(
        args.path,
        model=args.model,
        method=args.method,
        n_epochs=args.n_epochs,
        max_cost=args.max_cost,
        max_issues=args.max_issues,
    )
    if args.json:
        print_json(report)
    else:
        stream = sys.stderr if report.unreadable else sys.stdout
        print(report.summary(max_issues=args.max_issues), file=stream)
    if report.unreadable:
        return 2
    return 0 if report.ok else 1
