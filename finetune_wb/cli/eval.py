"""``finetune-wb eval``: evaluate and compare models on a chat JSONL file.

Exit codes: 0 when every model answered every row; 1 when some rows stayed unanswered (their count goes to
stderr; run the same command again to retry only those, the rest come from the cache), a model was refused
by the server (404/401/403: asked once, its other rows not sent, one ``error:`` line naming it) or the
evaluation failed; 2 on bad input (options, the data file, an evaluator spec, an answer cache file that is not a readable
SQLite database: the message names it and says to move it aside or use ``--no-cache``).

``--json`` prints :meth:`EvalReport.to_json`: ``metrics[model][evaluator]`` is a number (the mean score; the
accuracy for ``classification``), ``metric_details`` holds the intervals and details (for ``classification``
also ``accuracy``, ``majority_class_rate``, ``balanced_accuracy``, ``macro_f1``, ``cohen_kappa``, their
``intervals`` and ``beats_majority``), ``rows`` one object per example and model with ``model``, ``output``,
``tool_calls`` ([{"name", "arguments"}], arguments as the model wrote them), ``error`` and ``scores``
({evaluator: number}). A DPO file is accepted as ``--data``; its default evaluator is ``preference``. ``run --json`` and ``demo --json`` use the same schema.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from finetune_wb.cli._common import add_json_flag, positive as _positive, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    import finetune_wb.evaluation.resolution  # noqa: F401  (imports, and so registers, every built-in)
    from finetune_wb.evaluation.builtin_evaluators import BUILTIN_EVALUATORS

    parser = subparsers.add_parser(
        "eval",
        help="evaluate and compare models on a chat (or DPO) JSONL file",
        description=(
            "Ask each --model every prompt of --data (every message before the last assistant message, with "
            "the example's tools; or the input of a DPO line), score the answers against that message (text or "
            "tool calls; a DPO file is scored with the preference evaluator by default), and compare the "
            "models with confidence intervals and paired tests. Uses OPENAI_API_KEY / OPENAI_BASE_URL. "
            "Answers are cached, so a re-run asks only for what is missing."
        ),
        epilog=(
            "Exit codes: 0 every row answered; 1 some rows unanswered (count and first error on stderr; run "
            "again to retry only them); 2 bad input (also a --cache file that is not a readable SQLite "
            "database). --json prints one object: metrics[model][evaluator] "
            "(numbers), metric_details (intervals; for classification also majority_class_rate, "
            "balanced_accuracy, macro_f1, cohen_kappa, beats_majority), rows (model, output, tool_calls, "
            "error, scores), comparisons, models, warnings."
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="chat JSONL file to evaluate on")
    parser.add_argument(
        "--model",
        required=True,
        action="extend",
        nargs="+",
        dest="models",
        metavar="MODEL",
        help="model id (repeatable, or several after one flag; every pair is compared)",
    )
    parser.add_argument(
        "--evaluator",
        action="extend",
        nargs="+",
        dest="evaluators",
        metavar="SPEC",
        help="how to score answers (repeatable, or several after one flag; default exact_match). A built-in: "
        f"{', '.join(BUILTIN_EVALUATORS)}; with arguments after a colon: 'contains:Yes', "
        "'classification:Yes|No', 'regex:pattern=^yes,ignore_case=true', 'llm_judge:model=gpt-4o-mini', "
        "'NAME:{json}'. A custom one: MODULE:FUNCTION or path/to/file.py:FUNCTION",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive(int),
        default=None,
        help="most requests in flight (default: the library default, 64; lowered on 429s)",
    )
    parser.add_argument(
        "--rpm", type=_positive(float), default=None, help="client-side requests-per-minute limit"
    )
    parser.add_argument(
        "--tpm", type=_positive(float), default=None, help="client-side tokens-per-minute limit"
    )
    parser.add_argument(
        "--max-tokens", type=_positive(int), default=256, help="answer length limit (default 256)"
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", type=Path, default=None, help="SQLite cache file (default: in the state dir)"
    )
    cache.add_argument("--no-cache", action="store_true", help="ask every prompt again, store nothing")
    parser.add_argument("--wandb-project", default=None, help="log an eval run to this W&B project")
    parser.add_argument(
        "--wandb-log-again",
        action="store_true",
        help="log a new eval run even when every answer came from the cache and this same evaluation was "
        "already logged to the project under the same run name (by default it is not logged twice)",
    )
    parser.add_argument(
        "--tool-choice",
        default=None,
        metavar="CHOICE",
        help="sent with every request whose example has tools: auto, none, required, or a function name",
    )
    parser.add_argument(
        "--response-format",
        default=None,
        metavar="FORMAT",
        help="json_object, or a JSON Schema (a .json file or inline JSON) sent as response_format json_schema",
    )
    parser.add_argument(
        "--turns",
        choices=("last", "all"),
        default="last",
        help="last: ask for the last assistant message (default); all: ask for every assistant message with "
        "the history before it, reported per turn",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    from finetune_wb.cli.eval_batch import add_batch_arguments

    add_batch_arguments(parser)  # --batch and its flags (cli/eval_batch.py)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def _split_specs(specs: list[str]) -> list[str]:
    """``exact_match,classification`` -> two specs; a spec with arguments (``NAME:...``) stays whole."""
    out: list[str] = []
    for spec in specs:
        if ":" not in spec and "," in spec:
            out.extend(part.strip() for part in spec.split(",") if part.strip())
        else:
            out.append(spec)
    return out


def run(args: argparse.Namespace) -> int:
    from finetune_wb.cli._common import client_from_env
    from finetune_wb.errors import BatchInputError, EvalCacheError, EvaluationError
    from finetune_wb.evaluation import evaluate
    from finetune_wb.evaluation.inputs import load_eval_examples
    from finetune_wb.evaluation.light_client import light_client_from_env
    from finetune_wb.evaluation.requests import request_shaping
    from finetune_wb.evaluation.resolution import resolve_evaluators

    if not args.data.exists():
        print(f"error: {args.data} does not exist; --data takes a chat JSONL file", file=sys.stderr)
        return 2
    try:  # check the inputs before any request or W&B run
        load_eval_examples(args.data)
        evaluators = resolve_evaluators(_split_specs(args.evaluators)) if args.evaluators else None
        shaping = request_shaping(args)
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from finetune_wb.cli.eval_batch import batch_kwargs

    batch = batch_kwargs(args)
    if batch is None:
        return 2
    cache: Any = None if args.no_cache else (args.cache or True)
    try:  # a corrupt cache file is bad input too: say so before any request or W&B run
        _check_cache(cache)
    except EvalCacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = evaluate(
            args.data,
            models=args.models,
            evaluators=evaluators,
            # openai imported only if needed; batch mode uploads files and creates batches: the full client
            client=(None if batch else light_client_from_env()) or client_from_env(),
            concurrency=args.concurrency,  # None: the library default
            rpm=args.rpm,
            tpm=args.tpm,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            cache=cache,
            progress=not args.no_progress and not args.json,
            **shaping,
            **batch,
        )
    except EvalCacheError as exc:  # damaged (or locked) while the evaluation ran
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BatchInputError as exc:  # --batch: a request the Batch API would refuse; nothing was uploaded
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.wandb_project:
        from finetune_wb.errors import TrackingError
        from finetune_wb.evaluation.wandb_log import log_eval_run

        try:  # logged once the report exists: a cached re-evaluation is then not logged twice
            logged = log_eval_run(
                report, project=args.wandb_project, data=args.data, again=args.wandb_log_again
            )
        except TrackingError as exc:
            print(
                f"error: {exc}; the answers are cached (unless --no-cache): run the same command again to "
                "log them without asking the models again",
                file=sys.stderr,
            )
            return 1
        if logged is None:
            print(
                "W&B: this evaluation (every answer cached) is already logged to "
                f"{args.wandb_project!r}; not logging it again (pass --wandb-log-again to log it anyway)",
                file=sys.stderr,
            )
    if args.json:
        print_json(report.to_json())
    else:
        print(report.summary())
    from finetune_wb.evaluation.refusals import refused_models

    refused = refused_models(report.rows)
    for message in refused.values():  # once per model, not once per row; running again will not help
        print(f"error: {message}", file=sys.stderr)
    unanswered = sum(1 for r in report.rows if r.output is None and r.model not in refused)
    if batch and args.no_wait:  # submitted, not done: not a failure (run again to collect)
        from finetune_wb.cli.eval_batch import note_pending, pending_rows

        pending = pending_rows(report)
        if pending:
            note_pending(report, pending)
            unanswered -= pending
    if refused and not unanswered:
        return 1
    if unanswered:
        total = len(report.rows)
        first = next(r for r in report.rows if r.output is None and r.model not in refused)
        print(
            f"first unanswered: example {first.example_index}, model {first.model}: {first.error}",
            file=sys.stderr,
        )
        print(
            f"{unanswered} of {total} row(s) unanswered (their errors are in the report); run the same command "
            "again to retry only them",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_cache(cache: Any) -> None:
    """Open (and so check) the answer cache file; raises EvalCacheError naming it when it is unreadable."""
    if cache is None:
        return
    from finetune_wb.evaluation.cache import AnswerCache, default_cache_path

    AnswerCache(default_cache_path() if cache is True else Path(cache)).close()
