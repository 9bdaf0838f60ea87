"""`finetune-wb validate PATH`: check a training file and estimate tokens, epochs and cost.

Exit codes: 0 no errors (warnings allowed), 1 errors found (with ``--quality``: also an error finding such as
leakage or a secret), 2 the file cannot be read at all, or a bad option (an unreadable ``--test`` file).
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
    quality = parser.add_argument_group("data quality (see docs/data.md, 'Data quality')")
    quality.add_argument(
        "--quality",
        action="store_true",
        help="also check duplicates, near duplicates, conflicting answers, labels, outliers, secrets and"
        " personal data; --json gets a 'quality' key; an error finding (leakage, secret) exits 1",
    )
    quality.add_argument(
        "--test",
        metavar="TEST",
        default=None,
        help="the test file: report test examples whose prompt is (nearly) a training prompt (implies --quality)",
    )
    quality.add_argument(
        "--near-duplicate-threshold",
        type=_bounded(float, 0.01, 1, "a similarity from 0.01 to 1"),
        default=0.8,
        metavar="SIM",
        help="Jaccard similarity of two prompts' word 3-shingle sets from which they are near duplicates"
        " (default 0.8)",
    )
    quality.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="REGEX",
        help="do not report a secret or personal datum whose text matches this regular expression (repeatable)",
    )
    quality.add_argument(
        "--severity",
        action="append",
        default=[],
        metavar="CODE=LEVEL",
        help="set a finding's severity: error, warning or off (repeatable), e.g. personal_data=error",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def _quality_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if not (args.quality or args.test):
        return None
    severity: dict[str, str] = {}
    for item in args.severity:
        code, sep, level = item.partition("=")
        if not sep:
            raise ValueError(f"--severity {item!r}: write CODE=LEVEL, e.g. personal_data=error")
        severity[code.strip()] = level.strip()
    return {
        "near_duplicate_threshold": args.near_duplicate_threshold,
        "allow": list(args.allow),
        "severity": severity,
    }


def run(args: argparse.Namespace) -> int:
    from finetune_wb.errors import ConfigError
    from finetune_wb.validation.validate import validate_file

    try:
        quality = _quality_options(args)
        report = validate_file(
            args.path,
            model=args.model,
            method=args.method,
            n_epochs=args.n_epochs,
            max_cost=args.max_cost,
            max_issues=args.max_issues,
            quality=quality if quality is not None else False,
            test=args.test,
        )
    except (ConfigError, ValueError) as exc:
        print(f"finetune-wb validate: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json(report)
    else:
        stream = sys.stderr if report.unreadable else sys.stdout
        print(report.summary(max_issues=args.max_issues), file=stream)
    if report.unreadable:
        return 2
    return 0 if report.ok else 1
