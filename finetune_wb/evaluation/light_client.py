"""A chat-completions client for ``finetune-wb eval`` that does not import ``openai`` until it must.

Importing ``openai`` costs a fresh process 0.6-0.9 s (most of it building the SDK's ~1,000 pydantic types),
longer than everything else ``finetune-wb eval`` does before its first request. For the common
configuration — ``OPENAI_API_KEY`` (and optionally ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``,
``OPENAI_PROJECT_ID``) — the command therefore sends its chat completions through this client: a POST of
the same JSON body to ``{base_url}/chat/completions`` with the same headers, over aiohttp when it is
installed (``openai[aiohttp]``; about half the client CPU per request, see docs/benchmarks.md) and otherwise
— or when a proxy variable is set — over ``httpx2``, the HTTP library the installed ``openai`` uses, which
reads the proxy variables as ``openai`` does.

Failures look exactly as they do through ``openai``: an HTTP error status is turned into the same
``openai`` exception by the SDK's own mapping (``openai`` is imported then, on the first failure only), and
a connection failure or time-out becomes ``openai.APIConnectionError`` / ``APITimeoutError``; the engine's
retries, refusal handling and messages are therefore unchanged. Cache keys are the same too (the base URL
is written as ``openai`` writes it).

Anything else — Azure variables, a provider profile, a base URL with user-info, ``httpx2`` missing — gets
the full ``openai`` client, as does every library call: this is only what the command line builds from the
environment. ``FINETUNE_WB_LIGHT_CLIENT=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from finetune_wb._version import __version__

ENV = "FINETUNE_WB_LIGHT_CLIENT"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
TIMEOUT_S = 600.0  # openai's default: 600 s per request, 5 s to connect
CONNECT_TIMEOUT_S = 5.0


class LightAsyncClient:
    """Duck-types the part of ``AsyncOpenAI`` the evaluation engine uses: ``chat.completions.create``
    (returning the JSON body as a dict), ``base_url``, ``api_key``, ``timeout`` and ``close``."""

    closed_by_engine = True
    """The engine closes it (its connections) at the end of an evaluation, like a client it built."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/") + "/"  # as openai writes it (cache keys depend on it)
        self.timeout = TIMEOUT_S
        self.organization, self.project = organization, project
        self._url = self.base_url + "chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"finetune-wb/{__version__}",
            "X-Stainless-Read-Timeout": str(TIMEOUT_S),
        }
        if organization:
            self._headers["OpenAI-Organization"] = organization
        if project:
            self._headers["OpenAI-Project"] = project
        self._http: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._make_error: Any = None
        self.chat = _Namespace(completions=_Namespace(create=self.create))

    def _client(self) -> Any:
        """The HTTP session of the running event loop (a new one when the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            if _use_aiohttp():
                import aiohttp

                self._http = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    connector=aiohttp.TCPConnector(limit=1000),
                    # trust_env stays off: it would look each request's host up in ~/.netrc in a thread
                    # (and refuse our Authorization header on a match); with a proxy set, httpx2 is used.
                )
            else:
                import httpx2

                self._http = httpx2.AsyncClient(
                    timeout=httpx2.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100),
                    follow_redirects=True,
                )
            self._loop = loop
        return self._http

    async def create(self, **body: Any) -> dict[str, Any]:
        """POST one chat completion; the response's JSON, or the exception ``openai`` would raise."""
        http = self._client()
        if type(http).__module__.startswith("aiohttp"):
            return await self._create_aiohttp(http, body)
        import httpx2

        try:
            response = await http.post(self._url, json=body, headers=self._headers)
        except httpx2.TimeoutException as exc:
            import openai

            raise openai.APITimeoutError(request=exc.request) from exc
        except httpx2.TransportError as exc:
            import openai

            raise openai.APIConnectionError(request=exc.request) from exc
        if response.status_code >= 400:
            await response.aread()
            raise self._status_error(response)
        return response.json()  # type: ignore[no-any-return]

    async def _create_aiohttp(self, http: Any, body: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        data = json.dumps(body).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        try:
            async with http.post(self._url, data=data, headers=headers) as response:
                content = await response.read()
                status, response_headers = response.status, list(response.headers.items())
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            import httpx2
            import openai

            request = httpx2.Request("POST", self._url)
            if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
                raise openai.APITimeoutError(request=request) from exc
            raise openai.APIConnectionError(request=request) from exc
        if status >= 400:
            import httpx2

            request = httpx2.Request("POST", self._url, headers=headers, content=data)
            raise self._status_error(
                httpx2.Response(status, headers=response_headers, content=content, request=request)
            )
        return json.loads(content)  # type: ignore[no-any-return]

    def _status_error(self, response: Any) -> BaseException:
        """The ``openai`` exception for an error response, by the SDK's own mapping."""
        if self._make_error is None:
            import openai

            sdk = openai.AsyncOpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0)
            self._make_error = sdk._make_status_error_from_response
        error = self._make_error(response)
        return error if isinstance(error, BaseException) else RuntimeError(str(error))

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await (http.close() if type(http).__module__.startswith("aiohttp") else http.aclose())


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def _use_aiohttp() -> bool:
    """aiohttp when installed (about half the client CPU per request of httpx2; benchmarks/bench_eval.py),
    unless ``FINETUNE_WB_EVAL_HTTP=httpx``."""
    import importlib.util

    from finetune_wb.evaluation.http_clients import PROXY_VARS

    if os.environ.get("FINETUNE_WB_EVAL_HTTP", "").strip().lower() == "httpx":
        return False
    if any(os.environ.get(v) for v in PROXY_VARS):
        return False  # httpx2 reads proxy variables (and NO_PROXY) as openai's client does
    return importlib.util.find_spec("aiohttp") is not None


def light_client_from_env() -> LightAsyncClient | None:
    """The light client for the environment's plain OpenAI settings, or None when they need ``openai``."""
    if os.environ.get(ENV, "").strip() == "0":
        return None
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        return None  # Azure or no credentials: the full client (and its error message)
    if any(name.startswith(("AZURE_OPENAI", "FINETUNE_WB_PROVIDER")) for name in os.environ):
        return None
    base_url = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if "@" in base_url.split("//", 1)[-1].split("/", 1)[0]:
        return None  # user-info in the URL: the full client strips it and warns
    try:
        import importlib.util

        if importlib.util.find_spec("httpx2") is None:
            return None
    except (ImportError, ValueError):
        return None
    from finetune_wb._secrets import register_client_secrets

    client = LightAsyncClient(
        api_key=key,
        base_url=base_url,
        organization=os.environ.get("OPENAI_ORG_ID") or None,
        project=os.environ.get("OPENAI_PROJECT_ID") or None,
    )
    register_client_secrets(client)
    return client
