"""The ``finetune-wb`` command line.

Each subcommand lives in its own module under ``finetune_wb.cli`` and exposes ``register(subparsers)``,
which adds its parser(s) and sets ``handler`` to a function ``(args) -> int`` (the exit code). Handlers
only parse arguments and call library functions.

Exit codes shared by every subcommand: 0 success, 1 the operation failed (errors found, job failed,
rows unanswered, ...), 2 usage errors or an input that cannot be read at all, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from finetune_wb._version import __version__

# Modules that register subcommands, in the order they appear in --help.
SUBCOMMAND_MODULES = (
    "validate",
    "jobs",
    "sync",
    "link",
    "eval",
    "migration",
    "run",
    "azure",
    "providers",
    "emulator",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune-wb",
        description="Prepare, validate, fine-tune, track (W&B) and evaluate OpenAI-compatible chat models.",
    )
    parser.add_argument("--version", action="version", version=f"finetune-wb {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"finetune_wb.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from finetune_wb.errors import FineTuneError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (`finetune-wb ... --json | head`): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except FineTuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        openai = sys.modules.get("openai")
        if openai is None or not isinstance(exc, openai.OpenAIError):
            raise
        from finetune_wb.cli._common import describe_connection_error

        if isinstance(exc, openai.APIConnectionError):
            print(f"error: {describe_connection_error(exc)}", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
