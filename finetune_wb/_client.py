"""Building ``openai`` clients: from the environment, and async twins of a sync client.

Every function that talks to an OpenAI-compatible server takes ``client=None``. ``None`` means a client
built from the environment:

* ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (any OpenAI-compatible server) -> ``openai.OpenAI``;
* otherwise ``AZURE_OPENAI_ENDPOINT`` (+ ``AZURE_OPENAI_API_KEY`` or ``AZURE_OPENAI_AD_TOKEN`` and
  ``OPENAI_API_VERSION``) -> ``openai.AzureOpenAI``.

The async evaluation engine needs an ``AsyncOpenAI`` with the same settings as the caller's sync client;
:func:`get_async_client` derives one (Azure included) so users only ever configure one client.

A base URL with user-info (``https://user:password@gateway/v1``): httpx would send it as HTTP Basic auth in
place of the ``Authorization: Bearer <API key>`` header, so the key would silently never reach the server.
The library keeps the API key as the bearer token: every client it returns (built from the environment or
passed in) talks to the URL without its user-info, the user-info is not sent, and a warning says so once.
The password is redacted wherever it could be quoted, and no URL is stored or shown with it
(:func:`base_url_of` is :func:`finetune_wb._secrets.safe_url` of the client's URL).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from finetune_wb._secrets import register_client_secrets, safe_url
from finetune_wb.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import openai

_NO_CREDENTIALS = (
    "no OpenAI credentials found: set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible "
    "server), or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY and OPENAI_API_VERSION for Azure OpenAI, "
    "or pass client=openai.OpenAI(...) explicitly"
)


logger = logging.getLogger("finetune_wb")

_warned: set[str] = set()

_warned_lock = threading.Lock()


def _without_userinfo(url: str) -> str | None:
    """``url`` without its ``user:password@`` part (path, query and port kept), or None when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return None
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _strip_userinfo(client: Any) -> Any:
    """``client`` talking to its base URL without user-info (a copy sharing its connection pool), so the
    API key stays the bearer token; ``client`` itself when its URL has none or it cannot be copied.

    Its credentials (key, URL password, key-like headers and default query) are registered first, so they
    are redacted wherever an exception or a log line quotes them, even when they live only in code."""
    register_client_secrets(client)
    base = str(getattr(client, "base_url", "") or "")
    stripped = _without_userinfo(base)
    if stripped is None:
        return client
    shown = safe_url(base) or "the server"
    with _warned_lock:
        first = shown not in _warned
        _warned.add(shown)
    if first:
        logger.warning(
            "the base URL of %s carries user-info (user:password@): it is not sent, and the API key stays "
            "the bearer token (httpx would otherwise send the user-info as Basic auth in its place). Remove "
            "it from OPENAI_BASE_URL (or the client's base_url); put a forward proxy's credentials in "
            "HTTPS_PROXY; for a gateway that wants Basic auth, pass client=openai.OpenAI(base_url=..., "
            "default_headers={'Authorization': 'Basic ...'})",
            shown,
        )
    with_options = getattr(client, "with_options", None)
    if not callable(with_options):
        return client
    return with_options(base_url=stripped)


def _use_azure_from_env() -> bool:
    return (
        not os.environ.get("OPENAI_API_KEY")
        and not os.environ.get("OPENAI_BASE_URL")
        and bool(os.environ.get("AZURE_OPENAI_ENDPOINT"))
    )


def get_client(client: openai.OpenAI | None = None) -> openai.OpenAI:
    """Return ``client``, or a client built from the environment when it is None."""
    if client is not None:
        return _strip_userinfo(client)
    import openai

    try:
        built: openai.OpenAI = openai.AzureOpenAI() if _use_azure_from_env() else openai.OpenAI()
    except openai.OpenAIError as exc:
        raise ConfigError(f"{_NO_CREDENTIALS} ({exc})") from exc
    return _strip_userinfo(built)


def get_async_client(client: Any = None) -> openai.AsyncOpenAI:
    """Return an ``AsyncOpenAI`` configured like ``client`` (sync or async, OpenAI or Azure), or from the env."""
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        return _strip_userinfo(client)
    try:
        if client is None:
            built = openai.AsyncAzureOpenAI() if _use_azure_from_env() else openai.AsyncOpenAI()
            return _strip_userinfo(built)
    except openai.OpenAIError as exc:
        raise ConfigError(f"{_NO_CREDENTIALS} ({exc})") from exc
    client = _strip_userinfo(client)

    common: dict[str, Any] = {
        "organization": getattr(client, "organization", None),
        "project": getattr(client, "project", None),
        "timeout": getattr(client, "timeout", openai.NOT_GIVEN),
        "max_retries": getattr(client, "max_retries", openai.DEFAULT_MAX_RETRIES),
        "default_headers": dict(getattr(client, "_custom_headers", {}) or {}),
        "default_query": dict(getattr(client, "_custom_query", {}) or {}),
    }
    if isinstance(client, openai.AzureOpenAI):
        token_provider = getattr(client, "_azure_ad_token_provider", None)
        token = getattr(client, "_azure_ad_token", None)
        return openai.AsyncAzureOpenAI(
            base_url=str(client.base_url),
            api_version=getattr(client, "_api_version", None),
            api_key=None if (token or token_provider) else client.api_key,
            azure_ad_token=token,
            azure_ad_token_provider=token_provider,
            **common,
        )
    if isinstance(client, openai.OpenAI):
        return openai.AsyncOpenAI(api_key=client.api_key, base_url=str(client.base_url), **common)
    raise ConfigError(
        f"client must be an openai.OpenAI, AzureOpenAI, AsyncOpenAI or AsyncAzureOpenAI instance, "
        f"not {type(client).__name__}"
    )


def base_url_of(client: Any) -> str:
    """The server a client talks to as it may be stored and shown (cache keys, records, reports, W&B):
    :func:`~finetune_wb._secrets.safe_url`, so no user-info, query or fragment and no trailing slash.

    For a URL without credentials or query this is the URL minus its trailing slash, as it always was, so
    eval caches written before keep their keys."""
    return safe_url(str(getattr(client, "base_url", "") or ""))


def without_retries(client: Any) -> Any:
    """``client`` with the openai client's own retries off, so :mod:`finetune_wb._retry` is the one layer that
    repeats a request (and counts, paces and logs each attempt). Duck-typed clients are returned as they are."""
    with_options = getattr(client, "with_options", None)
    return with_options(max_retries=0) if callable(with_options) else client
