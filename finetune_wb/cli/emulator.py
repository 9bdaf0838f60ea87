"""``finetune-wb emulator``: run the local OpenAI-compatible fine-tuning server until interrupted."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import serve_until_stopped


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run a local OpenAI-compatible fine-tuning server (a stand-in for OpenAI in tests and demos)",
        description=(
            "Serve the finetune_wb emulator. The first line printed is its base URL; point a client at it "
            "with OPENAI_BASE_URL=<url> and any non-empty OPENAI_API_KEY. Stop it with Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8787, help="port to bind, 0 for any free port (default 8787)"
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="scale of job durations: 1.0 = default (a 100-example job takes ~9 s), 0.1 = ten times faster",
    )
    parser.add_argument(
        "--persist-dir", default=None, help="keep files and jobs in this directory across restarts"
    )
    parser.add_argument(
        "--flavour",
        choices=["openai", "azure"],
        default="openai",
        help="openai (default) or azure: Azure OpenAI's data plane (/openai/...?api-version=, /openai/v1/) "
        "and the management routes of model deployments, on the same port",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from finetune_wb.emulator.runner import Emulator

    emu = Emulator(
        pace=args.pace, persist_dir=args.persist_dir, host=args.host, port=args.port, flavour=args.flavour
    )

    def announce() -> None:
        print(emu.url if args.flavour == "azure" else emu.base_url, flush=True)
        if args.flavour == "azure":
            print(
                f"finetune-wb emulator (azure): AZURE_OPENAI_ENDPOINT={emu.url} "
                f"AZURE_MANAGEMENT_URL={emu.management_url} (v1 routes: {emu.url}/openai/v1/)",
                file=sys.stderr,
                flush=True,
            )
        print(
            f"finetune-wb emulator: admin routes under {emu.url}/_emulator/ ; Ctrl-C or SIGTERM to stop",
            file=sys.stderr,
            flush=True,
        )

    return serve_until_stopped(emu, announce)
