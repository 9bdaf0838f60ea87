"""`finetune-wb providers`: the provider profiles a job is checked against before anything is uploaded."""

from __future__ import annotations

import argparse
from typing import Any

from finetune_wb.cli._common import add_json_flag, print_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    p = subparsers.add_parser(
        "providers",
        help="list the provider profiles (what each service accepts and refuses)",
        description="Print each provider profile: its client's environment, the methods and hyperparameters "
        "it accepts, the JobSpec fields it refuses, whether it needs a deploy step and its model id shapes. "
        "`finetune-wb train --provider NAME` checks a job against one before any upload.",
    )
    add_json_flag(p)
    p.set_defaults(handler=cmd_providers)


def cmd_providers(args: argparse.Namespace) -> int:
    from finetune_wb.providers.profiles import PROFILES

    if args.json:
        print_json({"providers": [p.describe() for p in PROFILES.values()]})
        return 0
    for p in PROFILES.values():
        print(f"{p.name}: {p.title}")
        print(f"  client: {p.client}")
        print(f"  methods: {', '.join(p.methods)}; hyperparameters: {', '.join(p.hyperparameters)}")
        if p.extra_hyperparameters:
            print(f"  provider_hyperparameters: {', '.join(p.extra_hyperparameters)}")
        if p.training_types:
            print(f"  training_type: {', '.join(p.training_types)}")
        for field, why in p.refused.items():
            print(f"  refuses {field}: {why}")
        if p.permissive:
            print("  refuses nothing before the upload (the server decides)")
        print(f"  deploy step: {'yes' if p.deploy_step else 'no'}; ids: {', '.join(p.id_shapes)}")
        if p.jobs_end:
            print(f"  no new fine-tuning jobs from {p.jobs_end}")
        print(f"  docs: {p.docs}")
    return 0
