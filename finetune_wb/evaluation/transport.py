"""Sending one chat completion and reading the answer, with as little per-request CPU as the client allows."""

from __future__ import annotations

import sys
from typing import Any

from finetune_wb.evaluation.cache import CachedAnswer
from finetune_wb.evaluation.tool_calls import calls_of_message


def raw_response_class() -> Any:
    """The ``Response`` class of the HTTP library the installed ``openai`` uses (httpx or httpx2)."""
    try:
        import openai._base_client as base_client
    except ImportError:  # pragma: no cover - a future openai layout
        return None
    module = getattr(base_client, "httpx2", None) or getattr(base_client, "httpx", None)
    return getattr(module, "Response", None)


class DirectPost:
    """POST a chat completion through an ``AsyncOpenAI``'s own HTTP client, headers and error mapping.

    Why: with hundreds of requests in flight the client's generic request machinery (option building,
    parameter transformation, response models) costs more CPU than everything else in the engine, and on a
    small machine CPU, not the server, then limits throughput. This sends the same request — same transport
    (proxies, custom ``http_client``), the client's default headers (``OpenAI-Organization``,
    ``OpenAI-Project``, ``default_headers=``), API key and timeout — and raises the same ``openai`` status
    exceptions (with the response headers the retry policy reads). It is used only for plain API-key
    clients (not Azure, not token providers or workload identity); anything unusual uses the client's
    public ``post``.

    It leans on ``openai`` internals (``_client``, ``_make_status_error_from_response``). If a future
    ``openai`` changes them, the first ``AttributeError`` or ``TypeError`` from this path switches it off
    for the rest of the process (``disabled``) and that request — and every later one — goes through the public path.
    """

    def __init__(self, aclient: Any) -> None:
        self.http = aclient._client
        self.url = str(aclient.base_url).rstrip("/") + "/chat/completions"
        headers = {**aclient.default_headers, **aclient.auth_headers}
        self.headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        self.timeout = _http_timeout(self.http, aclient.timeout)
        read = getattr(self.timeout, "read", self.timeout)
        if read is not None:
            self.headers.setdefault("X-Stainless-Read-Timeout", str(read))
        self.make_error = aclient._make_status_error_from_response
        self.disabled = False

    @classmethod
    def for_client(cls, aclient: Any) -> DirectPost | None:
        if not _DIRECT["usable"]:
            return None
        openai = sys.modules.get("openai")
        if openai is None:  # not imported, so aclient is not an AsyncOpenAI (the CLI's light client)
            return None
        try:
            if (
                type(aclient) is not openai.AsyncOpenAI
                or not isinstance(aclient.api_key, str)
                or aclient.default_query
                or aclient.custom_auth is not None
                or any(getattr(aclient, a, None) is not None for a in _AUTH_HOOKS)
            ):
                return None
            direct = cls(aclient)
        except Exception:  # a future openai without these internals: use the public path
            return None
        if "Authorization" not in direct.headers or not hasattr(direct.http, "post"):
            return None
        return direct

    async def __call__(self, body: dict[str, Any]) -> Any:
        try:
            response = await self.http.post(self.url, json=body, headers=self.headers, timeout=self.timeout)
            if response.status_code >= 400:
                error = self.make_error(response)
            else:
                return response.json()
        except (AttributeError, TypeError) as exc:
            self._switch_off()
            raise DirectPathUnavailable(str(exc)) from exc
        if not isinstance(error, BaseException):
            self._switch_off()
            raise DirectPathUnavailable(f"error mapping returned {type(error).__name__}")
        raise error

    def _switch_off(self) -> None:
        """This poster, and every one built later in this process, leaves requests to the public path."""
        self.disabled = True
        _DIRECT["usable"] = False


# Attributes of AsyncOpenAI that mean "this client authenticates per request" (token providers, workload
# identity, provider runtimes): such clients take the public path, which knows how to run those hooks.
_AUTH_HOOKS = ("_provider_runtime", "_api_key_provider", "workload_identity", "_workload_identity_auth")


# Whether the direct path fits the installed openai; the first misfit switches it off for the process.
_DIRECT = {"usable": True}


class DirectPathUnavailable(Exception):
    """The direct path does not fit the installed ``openai`` (internals changed); use the public one."""


def _http_timeout(http: Any, timeout: Any) -> Any:
    """The client's timeout as the HTTP library of ``http`` (httpx or httpx2) expects it."""
    if timeout is None or isinstance(timeout, (int, float)):
        return timeout
    timeout_class = type(http.timeout)
    return timeout_class(connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool)


def chat_body(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of one chat completion request: what :func:`send` posts and what a Batch API input line
    carries (one builder, so both modes send the same request and share the answer cache)."""
    return {"model": model, "messages": messages, **params}


async def send(
    aclient: Any,
    direct: DirectPost | None,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
) -> Any:
    """One chat completion: the direct path when the client allows it, else the client's own methods."""
    openai = sys.modules.get("openai")  # a duck-typed client (the CLI's light one) needs no openai import

    body = chat_body(model, messages, params)
    if direct is not None and not direct.disabled:
        try:
            return await direct(body)
        except DirectPathUnavailable:
            pass  # ``direct`` is now disabled; this request and all later ones take the public path
    if openai is not None and isinstance(aclient, openai.AsyncOpenAI) and _RAW_POST["usable"]:
        response_class = raw_response_class()
        if response_class is not None:
            try:
                raw = await aclient.post("/chat/completions", body=body, cast_to=response_class)
                return raw.json()
            except (AttributeError, TypeError):
                _RAW_POST["usable"] = False  # a future openai refuses a raw cast: typed calls from now on
    return await aclient.chat.completions.create(**body)


# Whether ``client.post(..., cast_to=<http Response>)`` works with the installed openai (decided at first use).
_RAW_POST = {"usable": True}


def parse_completion(response: Any) -> CachedAnswer:
    """Text, tool calls, refusal, usage and finish reason from a completion (a JSON dict or the client's
    model object)."""
    if not isinstance(response, dict):
        response = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    choices = response.get("choices") or []
    choice = choices[0] if choices else {}
    message = choice.get("message") or {}
    usage = response.get("usage") or {}
    content = message.get("content")
    return CachedAnswer(
        output=content if isinstance(content, str) else "",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
        tool_calls=calls_of_message(message) or None,
        refusal=message.get("refusal") if isinstance(message.get("refusal"), str) else None,
    )


def describe_error(exc: BaseException) -> str:
    from finetune_wb._retry import status_code_of
    from finetune_wb._secrets import safe_url

    status = status_code_of(exc)
    text = str(exc).strip() or type(exc).__name__
    prefix = f"HTTP {status}: " if status is not None else f"{type(exc).__name__}: "
    if status is None:
        try:
            url = safe_url(str(exc.request.url))  # type: ignore[attr-defined]
        except Exception:  # not an HTTP error, or one without its request
            url = ""
        if url:  # the wording of every command's connection failure
            from finetune_wb._retry import describe_connection_error

            return (prefix + describe_connection_error(exc))[:500]
    return (prefix + text)[:500]
