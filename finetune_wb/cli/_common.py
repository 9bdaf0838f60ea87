"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def to_jsonable(obj: Any) -> Any:
    """Pydantic models (ours and openai's) -> plain JSON values."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def client_from_env() -> Any:
    """An ``openai.OpenAI`` client from OPENAI_API_KEY / OPENAI_BASE_URL (and Azure variables, see _client)."""
    from finetune_wb._client import get_client

    return get_client(None)


def describe_connection_error(exc: BaseException) -> str:
    """A connection failure, naming the server we tried and what to check."""
    request = getattr(exc, "request", None)
    url = _without_secrets(str(getattr(request, "url", "") or "")) or "the API server"
    return (
        f"could not reach {url} ({exc}); check OPENAI_BASE_URL (or the client's base_url), "
        "that the server is running, and the network"
    )


def _without_secrets(url: str) -> str:
    """Drop user-info and the query string (either may carry a key) from a URL shown to people."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
