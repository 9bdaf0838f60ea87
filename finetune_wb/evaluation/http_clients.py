"""Which HTTP client the evaluation engine gives the ``AsyncOpenAI`` clients it builds.

With many requests in flight on a small machine the client's CPU per request, not the server, limits an
evaluation, and most of that CPU is the HTTP stack. openai's documented aiohttp transport
(``openai.DefaultAioHttpClient``, installed with ``openai[aiohttp]``) costs about half the client CPU per
request of its default httpx transport (``benchmarks/bench_eval.py`` prints both; docs/benchmarks.md has the
figures), so the engine uses it for the clients it builds itself when aiohttp is installed:

* a client built from the environment or from a sync ``openai.OpenAI`` / ``AzureOpenAI`` you passed;
* the fresh connection pool the sync ``evaluate`` gives your ``AsyncOpenAI`` on its private event loop.

A client with your own ``http_client=`` is always used as it is. The default httpx transport is kept when a
proxy is set in the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``; openai's aiohttp transport
does not read them) and when ``FINETUNE_WB_EVAL_HTTP=httpx``; ``FINETUNE_WB_EVAL_HTTP=aiohttp`` asks for
aiohttp even then.
"""

from __future__ import annotations

import os
from typing import Any

ENV = "FINETUNE_WB_EVAL_HTTP"
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def use_aiohttp() -> bool:
    """Whether built clients get openai's aiohttp transport (see the module docstring)."""
    choice = os.environ.get(ENV, "").strip().lower()
    if choice == "httpx":
        return False
    if choice != "aiohttp" and any(os.environ.get(v) for v in PROXY_VARS):
        return False
    try:
        import aiohttp  # noqa: F401
        import openai
    except ImportError:
        return False
    return hasattr(openai, "DefaultAioHttpClient")


def fresh_http_client() -> Any:
    """A new HTTP client for an ``AsyncOpenAI``: openai's aiohttp one when it is used, else its default."""
    import openai

    if use_aiohttp():
        try:
            return openai.DefaultAioHttpClient()
        except Exception:  # aiohttp present but unusable: the default transport
            pass
    return openai.DefaultAsyncHttpxClient()


def with_fast_transport(aclient: Any) -> Any:
    """``aclient`` (built by the engine) on openai's aiohttp transport when that is used; else ``aclient``.

    Only a client on openai's default httpx client is switched (the copy keeps every other setting); the
    unused default client it had holds no connection.
    """
    import openai

    if not use_aiohttp():
        return aclient
    try:
        if type(aclient._client).__name__ != "AsyncHttpxClientWrapper" or not isinstance(
            aclient._client, openai.DefaultAsyncHttpxClient
        ):
            return aclient  # a custom http_client: the caller's choice
        return aclient.copy(http_client=openai.DefaultAioHttpClient())
    except Exception:  # a future openai without these: keep the client as built
        return aclient


def transport_name(aclient: Any) -> str:
    """The transport of an ``AsyncOpenAI``: "aiohttp", "httpx" or its HTTP client's class name."""
    http = getattr(aclient, "_client", None)
    name = type(http).__name__
    if "AioHttp" in name or "Aiohttp" in name:
        return "aiohttp"
    if "Httpx" in name or name == "AsyncClient":
        return "httpx"
    return name
