"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from finetune_wb._jsonable import to_jsonable


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def print_json(obj: Any) -> None:
    # One write of the whole text: json.dump to a stream writes each token separately (~130,000 writes for
    # a 2,000-row evaluation report); the text is the same.
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")
    sys.stdout.flush()


def client_from_env() -> Any:
    """An ``openai.OpenAI`` client from OPENAI_API_KEY / OPENAI_BASE_URL (and Azure variables, see _client)."""
    from finetune_wb._client import get_client

    return get_client(None)


def describe_connection_error(exc: BaseException) -> str:
    """A connection failure, naming the server we tried and what to check (the wording of every command:
    :func:`finetune_wb._retry.describe_connection_error`)."""
    from finetune_wb._retry import describe_connection_error as describe

    return describe(exc)


def positive(kind: type) -> Any:
    """An argparse ``type=`` for a number of ``kind`` (int, float) that must be greater than 0."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def serve_until_stopped(emu: Any, announce: Callable[[], None]) -> int:
    """Start ``emu`` (an emulator handle), call ``announce`` (print where it listens), and serve until Ctrl-C
    or SIGTERM; then stop it. Exit code 0.

    SIGINT is handled here too: a shell starts a background job (``finetune-wb emulator &``) with SIGINT
    ignored, and Python then never raises KeyboardInterrupt, so ``kill -INT`` would not stop the server.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    emu.start()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        announce()
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
