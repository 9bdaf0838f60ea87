"""`finetune-wb link`: once online, replay the lineage recorded by offline runs as real W&B edges."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``link`` subcommand."""
    parser = subparsers.add_parser(
        "link",
        help="turn the lineage recorded by offline runs into W&B input edges (needs online W&B)",
        description="For every run of the project whose config lists inputs (config.lineage.inputs, as runs "
        "logged offline record them), declare each input artifact as used by the run (use_artifact), unless "
        "it already is: running it again changes nothing. An input is looked up in the run's own project "
        "by its content (SHA-256 alias) and linked only when the content matches. Upload offline runs with "
        "`wandb sync` first. Exit codes: 0 every input linked (or already linked); 1 some input not found "
        "or of other content; 2 W&B is offline.",
    )
    parser.add_argument("--project", help="W&B project (default: $WANDB_PROJECT or openai-fine-tunes)")
    parser.add_argument("--entity", help="W&B entity (default: $WANDB_ENTITY or your default entity)")
    add_json_flag(parser)
    parser.set_defaults(handler=run_link)


def run_link(args: argparse.Namespace, *, api: Any = None) -> int:
    from finetune_wb.tracking.lineage import replay_lineage
    from finetune_wb.tracking.mode import is_offline
    from finetune_wb.tracking.synced import default_entity, default_project

    if is_offline():
        print(
            "error: finetune-wb link needs online W&B: log in (`wandb login` or WANDB_API_KEY), unset "
            "WANDB_MODE=offline, upload the offline runs with `wandb sync`, then run it again",
            file=sys.stderr,
        )
        return 2
    rows = replay_lineage(project=default_project(args.project), entity=default_entity(args.entity), api=api)
    failed = [r for r in rows if r["outcome"] not in ("linked", "already_linked")]
    if args.json:
        print_json({"links": rows, "n_linked": sum(r["outcome"] == "linked" for r in rows)})
    else:
        for r in rows:
            line = f"{r['run']}: {r['artifact']} {r['outcome']}"
            print(f"{line} ({r['detail']})" if r["detail"] and r["outcome"] != "linked" else line)
        if not rows:
            print("no run of the project records inputs to link")
    return 1 if failed else 0
