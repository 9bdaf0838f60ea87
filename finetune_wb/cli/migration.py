"""``finetune-wb retirements``, ``snapshot`` and ``migrate``: before a base model retires.

Exit codes: ``retirements`` 0 (a shut-down model is a finding, not an error); ``snapshot`` 0 only when every
prompt was answered and the golden file written, 1 when rows stayed unanswered (run again: only those are
asked), the model has been shut down, does not exist or the key may not use it; ``migrate`` 0 when every
candidate answered every prompt, 1 when some did not; both 2 on bad input (a prompts file with bad lines, a
golden file without answers, a candidate spec that does not parse, a missing --train file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from finetune_wb.cli._common import add_json_flag, positive as _positive, print_json
from finetune_wb.cli.eval_batch import add_batch_arguments, batch_kwargs


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _price(text: str) -> tuple[str, tuple[float, float]]:
    model, _, rest = text.partition("=")
    parts = rest.split(",")
    try:
        if not model or len(parts) != 2:
            raise ValueError
        return model, (float(parts[0]), float(parts[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use MODEL=INPUT,OUTPUT in USD per 1M tokens, e.g. gpt-5-mini=0.25,2.00"
        ) from None


def _eval_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=_positive(int), default=None, help="most requests in flight")
    parser.add_argument("--rpm", type=_positive(float), default=None, help="client-side requests per minute")
    parser.add_argument("--tpm", type=_positive(float), default=None, help="client-side tokens per minute")
    parser.add_argument("--max-tokens", type=_positive(int), default=256, help="answer length limit (256)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, default=None, help="SQLite answer cache (default: state dir)")
    cache.add_argument("--no-cache", action="store_true", help="ask everything again, store nothing")
    parser.add_argument("--wandb-project", default=None, help="log to this W&B project")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_batch_arguments(parser)  # --batch: the same requests through the Batch API (half the price)
    add_json_flag(parser)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "concurrency": args.concurrency,
        "rpm": args.rpm,
        "tpm": args.tpm,
        "max_tokens": args.max_tokens,
        "cache": None if args.no_cache else (args.cache or True),
        "progress": not args.no_progress and not args.json,
    }


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    p = subparsers.add_parser(
        "retirements",
        help="which fine-tuned models retire when, and what to do before",
        description="List every fine-tuned model this key can see (models list and jobs) with its base model, "
        "shutdown date (the server's shutdown_date first, else the documented table), days left, status and "
        "whether W&B holds its lineage; most urgent first.",
        epilog="Exit code 0 (a model already shut down is reported, not an error). --json prints {models: "
        "[{model, base_model, shutdown_date, days_left, status, ...}], counts, today, window_days}.",
    )
    p.add_argument("--window-days", type=int, default=90, help="days before shutdown that count as retiring")
    p.add_argument("--today", type=_date, default=None, help="count days from this date (YYYY-MM-DD)")
    p.add_argument("--wandb-project", default=None, help="also ask this W&B project (online) for synced jobs")
    add_json_flag(p)
    p.set_defaults(handler=run_retirements)

    s = subparsers.add_parser(
        "snapshot",
        help="record a fine-tune's answers to every prompt as a golden set",
        description="Ask MODEL every prompt of --data (chat JSONL, with or without an assistant message) and "
        "write a golden set: a chat JSONL with the model's answers and GOLDEN.meta.json beside it holding the "
        "references. Answers are cached as they arrive: a killed snapshot continues without asking again.",
        epilog="Exit codes: 0 every prompt answered (golden file written); 1 prompts unanswered (run again), "
        "model shut down, unknown or not allowed; 2 bad input. --json prints {model, golden_path, n_prompts, "
        "n_answered, n_unanswered, n_cached, n_requests, estimate, ...}.",
    )
    s.add_argument("model", metavar="MODEL", help="the fine-tuned model id")
    s.add_argument("--data", required=True, type=Path, help="prompts: chat JSONL")
    s.add_argument("--out", type=Path, default=None, help="golden file (default: DATA.golden-MODEL.jsonl)")
    s.add_argument("--today", type=_date, default=None, help=argparse.SUPPRESS)
    _eval_flags(s)
    s.set_defaults(handler=run_snapshot)

    m = subparsers.add_parser(
        "migrate",
        help="compare replacement candidates on a golden set and recommend one",
        description="Ask every --candidate the golden prompts; score agreement with the fine-tune and accuracy "
        "against the references (95%% intervals, McNemar against the fine-tune), latency and cost per 1,000 "
        "requests; recommend the cheapest candidate whose agreement is not significantly below the tolerance.",
        epilog="A SPEC is MODEL, MODEL+fewshot:K (the K most representative training examples) or "
        "MODEL+retrieval:K (the K most similar per prompt), built from --train. Exit codes: 0 every candidate "
        "answered every prompt; 1 some did not (run again); 2 bad input. --json prints {candidates: [{name, "
        "agreement, agreement_ci, accuracy, p_value, cost_per_1k_requests, latency_p50_ms, latency_p95_ms, "
        "...}], recommendation, reason, ...}.",
    )
    m.add_argument("--golden", required=True, type=Path, help="golden file written by `snapshot`")
    m.add_argument(
        "--candidate",
        required=True,
        action="extend",
        nargs="+",
        dest="candidates",
        metavar="SPEC",
        help="a candidate (repeatable)",
    )
    m.add_argument(
        "--train", type=Path, default=None, help="the fine-tune's training file (for +fewshot/+retrieval)"
    )
    m.add_argument("--tolerance", type=float, default=2.0, help="points of agreement allowed to lose (2)")
    m.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="MODEL=IN,OUT",
        help="override a price (USD per 1M input,output tokens); repeatable",
    )
    m.add_argument("--markdown", type=Path, default=None, help="write the report as Markdown here")
    m.add_argument("--html", type=Path, default=None, help="write the report as HTML here")
    _eval_flags(m)
    m.set_defaults(handler=run_migrate)


def _input_error(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def run_retirements(args: argparse.Namespace) -> int:
    from finetune_wb.cli._common import client_from_env
    from finetune_wb.migration.inventory import retirements

    if args.window_days < 0:
        return _input_error(ValueError(f"--window-days must be >= 0, got {args.window_days}"))
    inv = retirements(
        client_from_env(), today=args.today, window_days=args.window_days, project=args.wandb_project
    )
    if args.json:
        print_json(inv)
    else:
        print(inv.summary())
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    from finetune_wb.cli._common import client_from_env
    from finetune_wb.errors import EvalCacheError
    from finetune_wb.migration.errors import MigrationInputError
    from finetune_wb.migration.snapshots import snapshot

    def show(estimate: Any) -> None:
        print(f"estimate: {estimate.line()}", file=sys.stderr)

    batch = batch_kwargs(args)
    if batch is None:
        return 2
    try:
        result = snapshot(
            args.model,
            args.data,
            out=args.out,
            client=client_from_env(),
            project=args.wandb_project,
            today=args.today,
            on_estimate=show,
            **_options(args),
            **batch,
        )
    except (MigrationInputError, EvalCacheError) as exc:
        return _input_error(exc)
    if args.json:
        print_json(result)
    elif result.golden_path:
        print(
            f"golden set: {result.golden_path} ({result.n_answered}/{result.n_prompts} answered, "
            f"{result.n_cached} from the cache, {result.n_requests} request(s); references in {result.meta_path})"
        )
    if result.n_unanswered:
        print(
            f"error: {result.n_unanswered} of {result.n_prompts} prompt(s) unanswered (first: {result.first_error}); "
            "no golden file written. Run the same command again: the answers so far come from the cache",
            file=sys.stderr,
        )
        return 1
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from finetune_wb.cli._common import client_from_env
    from finetune_wb.errors import EvalCacheError
    from finetune_wb.migration.errors import MigrationInputError
    from finetune_wb.migration.report import migrate

    batch = batch_kwargs(args)
    if batch is None:
        return 2
    run = None
    try:
        if args.wandb_project:
            from finetune_wb.tracking.mode import start_run

            run = start_run(
                project=args.wandb_project,
                job_type="eval",
                name=f"migrate-{args.golden.stem}",
                what=f"an eval run in project {args.wandb_project!r}",
            )
        report = migrate(
            args.golden,
            args.candidates,
            train=args.train,
            client=client_from_env(),
            tolerance=args.tolerance,
            prices=dict(args.price) or None,
            run=run,
            markdown=args.markdown,
            html=args.html,
            **_options(args),
            **batch,
        )
    except (MigrationInputError, EvalCacheError) as exc:
        return _input_error(exc)
    finally:
        if run is not None:
            run.finish()
    if args.json:
        print_json(report.to_json())
    else:
        print(report.summary())
    missing = [c for c in report.candidates if c.n_unanswered]
    for c in missing:
        print(
            f"error: {c.name}: {c.n_unanswered} of {c.n} prompt(s) unanswered ({c.first_error})",
            file=sys.stderr,
        )
    return 1 if missing else 0
