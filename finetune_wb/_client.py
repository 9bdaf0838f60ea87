"""Building ``openai`` clients: from the environment, and async twins of a sync client.

Every function that talks to an OpenAI-compatible server takes ``client=None``. ``None`` means a client
built from the environment:

* ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (any OpenAI-compatible server) -> ``openai.OpenAI``;
* otherwise ``AZURE_OPENAI_ENDPOINT`` (+ ``AZURE_OPENAI_API_KEY`` or ``AZURE_OPENAI_AD_TOKEN`` and
  ``OPENAI_API_VERSION``) -> ``openai.AzureOpenAI``.

The async evaluation engine needs an ``AsyncOpenAI`` with the same settings as the caller's sync client;
:func:`get_async_client` derives one (Azure included) so users only ever configure one client.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import openai

_NO_CREDENTIALS = (
    "no OpenAI credentials found: set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible "
    "server), or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY and OPENAI_API_VERSION for Azure OpenAI, "
    "or pass client=openai.OpenAI(...) explicitly"
)


def _use_azure_from_env() -> bool:
    return (
        not os.environ.get("OPENAI_API_KEY")
        and not os.environ.get("OPENAI_BASE_URL")
        and bool(os.environ.get("AZURE_OPENAI_ENDPOINT"))
    )


def get_client(client: openai.OpenAI | None = None) -> openai.OpenAI:
    """Return ``client``, or a client built from the environment when it is None."""
    if client is not None:
        return client
    import openai

    try:
        if _use_azure_from_env():
            return openai.AzureOpenAI()
        return openai.OpenAI()
    except openai.OpenAIError as exc:
        raise ConfigError(f"{_NO_CREDENTIALS} ({exc})") from exc


def get_async_client(client: Any = None) -> openai.AsyncOpenAI:
    """Return an ``AsyncOpenAI`` configured like ``client`` (sync or async, OpenAI or Azure), or from the env."""
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        return client
    try:
        if client is None:
            if _use_azure_from_env():
                return openai.AsyncAzureOpenAI()
            return openai.AsyncOpenAI()
    except openai.OpenAIError as exc:
        raise ConfigError(f"{_NO_CREDENTIALS} ({exc})") from exc

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
    """The server a client talks to, without a trailing slash (used in cache keys and records)."""
    return str(getattr(client, "base_url", "")).rstrip("/")


def without_retries(client: Any) -> Any:
    """``client`` with the openai client's own retries off, so :mod:`finetune_wb._retry` is the one layer that
    repeats a request (and counts, paces and logs each attempt). Duck-typed clients are returned as they are."""
    with_options = getattr(client, "with_options", None)
    return with_options(max_retries=0) if callable(with_options) else client
