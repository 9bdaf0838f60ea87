"""``finetune-wb eval``: evaluate and compare models on a chat JSONL file.

Exit codes: 0 when every model answered every row; 1 when some rows stayed unanswered (their count goes to
stderr; run the same command again to retry only those, the rest come from the cache); 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate and compare models on a chat JSONL file",
        description=(
            "Ask each --model every prompt of --data (every message before the last assistant message), score "
            "the answers against that message, and compare the models with confidence intervals and paired "
            "tests. Uses OPENAI_API_KEY / OPENAI_BASE_URL. Answers are cached, so a re-run asks only for "
            "what is missing."
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="chat JSONL file to evaluate on")
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        dest="models",
        metavar="MODEL",
        help="model id (repeatable)",
    )
    parser.add_argument(
        "--evaluator",
        action="append",
        dest="evaluators",
        metavar="NAME",
        help="built-in evaluator (repeatable; default exact_match): exact_match, contains, regex, json_valid, "
        "json_match, classification, llm_judge",
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="most requests in flight (default 64; lowered on 429s)"
    )
    parser.add_argument("--rpm", type=float, default=None, help="client-side requests-per-minute limit")
    parser.add_argument("--tpm", type=float, default=None, help="client-side tokens-per-minute limit")
    parser.add_argument("--max-tokens", type=int, default=256, help="answer length limit (default 256)")
    parser.add_argument("--temperature", type=float, default=0.0)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", type=Path, default=None, help="SQLite cache file (default: in the state dir)"
    )
    cache.add_argument("--no-cache", action="store_true", help="ask every prompt again, store nothing")
    parser.add_argument("--wandb-project", default=None, help="log an eval run to this W&B project")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from finetune_wb.cli._common import client_from_env
    from finetune_wb.evaluation import evaluate

    if not args.data.exists():
        print(f"error: {args.data} does not exist", file=sys.stderr)
        return 2
    cache: Any = None if args.no_cache else (args.cache or True)
    wandb_run = None
    if args.wandb_project:
        from finetune_wb.tracking import start_eval_run

        wandb_run = start_eval_run(project=args.wandb_project, config={"data": str(args.data)})
    try:
        report = evaluate(
            args.data,
            models=args.models,
            evaluators=args.evaluators or None,
            client=client_from_env(),
            concurrency=args.concurrency,
            rpm=args.rpm,
            tpm=args.tpm,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            cache=cache,
            run=wandb_run,
            progress=not args.no_progress and not args.json,
        )
    finally:
        if wandb_run is not None:
            wandb_run.finish()
    if args.json:
        print_json(report)
    else:
        print(report.summary())
    unanswered = report.n_unanswered
    if unanswered:
        print(
            f"{unanswered} row(s) unanswered (see their errors); run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0
