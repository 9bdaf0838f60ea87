"""`finetune-wb sync`: write finished fine-tuning jobs to W&B runs (all pages, skipping synced jobs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import add_json_flag, client_from_env, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``sync`` subcommand."""
    parser = subparsers.add_parser(
        "sync",
        help="log fine-tuning jobs (and their data, metrics, model) to W&B",
        description="Write finished fine-tuning jobs to W&B as 'fine-tune' runs: training/validation data "
        "artifacts, per-step metrics, checkpoints, the model artifact. Jobs already synced are skipped. "
        "Uses OPENAI_API_KEY / OPENAI_BASE_URL (or the Azure variables) and WANDB_PROJECT / WANDB_ENTITY / "
        "WANDB_MODE. Offline, runs are written locally; upload them later with `wandb sync`.",
    )
    parser.add_argument(
        "--id", dest="ids", action="append", metavar="JOB", help="sync only this job (repeatable)"
    )
    parser.add_argument("--project", help="W&B project (default: $WANDB_PROJECT or openai-fine-tunes)")
    parser.add_argument("--entity", help="W&B entity (default: $WANDB_ENTITY or your default entity)")
    parser.add_argument("--overwrite", action="store_true", help="sync again jobs that were already synced")
    parser.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="consider only the N most recent jobs (already-synced ones count among the N); "
        "ignored with --id",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow running jobs live until they end, one after the other, instead of skipping them",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run_sync)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of jobs, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def run_sync(args: argparse.Namespace) -> int:
    """Exit 0 unless a job failed to sync (1); running jobs are skipped with a note, not an error."""
    from finetune_wb.tracking.sync import SyncReport, sync_job, sync_jobs

    client = client_from_env()
    if args.ids:
        report = SyncReport(project=args.project or "", entity=args.entity)
        for job_id in args.ids:
            report.results.append(
                sync_job(
                    job_id,
                    project=args.project,
                    entity=args.entity,
                    overwrite=args.overwrite,
                    client=client,
                    wait=args.wait,
                    progress=args.wait and sys.stderr.isatty(),
                )
            )
        if report.results:  # defaults resolved by sync_job ($WANDB_PROJECT, $WANDB_ENTITY)
            report.project, report.entity = report.results[0].project, report.results[0].entity
    else:
        report = sync_jobs(
            project=args.project,
            entity=args.entity,
            overwrite=args.overwrite,
            limit=args.limit,
            client=client,
            wait=args.wait,
            progress=args.wait and sys.stderr.isatty(),
        )
    if args.json:
        print_json(report)
    else:
        for r in report.results:
            detail = r.error or (r.message if r.outcome == "not_finished" else r.fine_tuned_model) or ""
            run = f" run {r.run_id}" if r.run_id else ""
            print(f"{r.job_id}  {r.job_status or '?':<10} {r.outcome}{run}  {detail}".rstrip())
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())) or "no jobs"
        where = f"{report.entity}/{report.project}" if report.entity else report.project
        print(f"{counts} (W&B project {where})", file=sys.stderr)
    return 0 if report.ok else 1
