"""Credentials never leave the process: find them (environment, client, URLs) and scrub them from what is logged.

Everything that writes to W&B, to disk or to a terminal passes through :func:`scrub` / :func:`redact_text`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger("finetune_wb.tracking")


# Environment variables whose values are credentials. Their values must never reach W&B or local records.
SECRET_ENV_VARS = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "WANDB_API_KEY",
)


# Environment variables holding URLs that may carry credentials (user:password@host, ?api-key=...).
SECRET_URL_ENV_VARS = (
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "WANDB_BASE_URL",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


# Dict keys whose values are dropped wherever they appear (compared case-insensitively).
_SECRET_KEYS = re.compile(r"(^|_|-)(api[_-]?key|apikey|authorization|password|secret|ad[_-]?token)$", re.I)


REDACTED = "[redacted]"


# Query-parameter and header names that carry credentials (``?api-key=``, ``x-api-key:``, ``?sig=``...).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.I)


# Credentials learned from clients passed in by the caller (not in the environment), for this process.
_registered: set[str] = set()


_registered_lock = threading.Lock()


def url_secrets(url: str | None) -> list[str]:
    """Credentials inside a URL: the user-info password (and ``user:password``) and key-like query values."""
    if not url:
        return []
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
        if parts.username:
            found.append(f"{parts.username}:{parts.password}")
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_PARAM.search(name):
            found.append(value)
    return [v for v in found if v]


def register_client_secrets(client: Any) -> None:
    """Remember the credentials an ``openai`` client carries so they are redacted like the env keys.

    A client built in code (``OpenAI(api_key=...)``, a gateway URL with ``?api-key=``, a custom
    ``api-key`` header) holds keys that are in no environment variable; they must not reach W&B either.
    """
    if client is None:
        return
    values: list[str] = []
    for attr in ("api_key", "_azure_ad_token", "admin_api_key"):
        value = getattr(client, attr, None)
        if isinstance(value, str):
            values.append(value)
    values += url_secrets(str(getattr(client, "base_url", "") or ""))
    for attr in ("_custom_query", "_custom_headers"):
        mapping = getattr(client, attr, None)
        if isinstance(mapping, Mapping):
            for name, value in mapping.items():
                if isinstance(value, str) and _SECRET_PARAM.search(str(name)):
                    values.append(value)
                    if " " in value:  # "Bearer <token>": the token alone too
                        values.append(value.split(" ", 1)[1])
    with _registered_lock:
        _registered.update(v for v in values if v)


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Credential strings in the environment, in registered clients (plus ``extra``), longest first."""
    values = {os.environ.get(name) or "" for name in SECRET_ENV_VARS}
    for name in SECRET_URL_ENV_VARS:
        values.update(url_secrets(os.environ.get(name)))
    with _registered_lock:
        values.update(_registered)
    values.update(v for v in extra if v)
    # Very short values would redact ordinary words; real keys are long.
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


def scrub(obj: Any, *, secrets: Iterable[str] | None = None) -> Any:
    """Return a copy of a JSON-like value with credential keys dropped and secret strings redacted."""
    values = list(secrets) if secrets is not None else known_secrets()
    return _scrub(obj, values)


def _scrub(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, dict):
        return {
            str(k): _scrub(v, secrets)
            for k, v in obj.items()
            if not (isinstance(k, str) and _SECRET_KEYS.search(k) and v not in (None, ""))
        }
    if isinstance(obj, (list, tuple)):
        return [_scrub(v, secrets) for v in obj]
    if isinstance(obj, str):
        for secret in secrets:
            if secret in obj:
                obj = obj.replace(secret, REDACTED)
        return obj
    return obj


def redact_text(text: str, *, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every known secret replaced (for raw file contents going into an artifact)."""
    for secret in secrets if secrets is not None else known_secrets():
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Replace known credentials in a log record's final message (exceptions can quote anything)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def safe_url(url: str | None) -> str:
    """``url`` as it may be shown or stored: no user-info, query or fragment (any of them may hold a key).

    The trailing slash of the path is dropped, so one server has one spelling. An unparseable URL gives ``""``.
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(str(url or ""))
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 address keeps its brackets
            host = f"[{host}]"
        if host and parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return ""
    if not host:
        return ""
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
