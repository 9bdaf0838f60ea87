"""Sending one chat completion and reading the answer, with as little per-request CPU as the client allows."""

from __future__ import annotations

from typing import Any

from finetune_wb.evaluation.cache import CachedAnswer


def raw_response_class() -> Any:
    """The ``Response`` class of the HTTP library the installed ``openai`` uses (httpx or httpx2)."""
    import openai._base_client as base_client

    module = getattr(base_client, "httpx2", None) or getattr(base_client, "httpx", None)
    return getattr(module, "Response", None)


class DirectPost:
    """POST a chat completion through an ``AsyncOpenAI``'s own HTTP client, headers and error mapping.

    Why: with hundreds of requests in flight the client's generic request machinery (option building,
    parameter transformation, response models) costs more CPU than everything else in the engine, and on a
    small machine CPU, not the server, then limits throughput. This sends the same request — same transport
    (proxies, custom ``http_client``), headers, API key — and raises the same ``openai`` exceptions (with
    the response headers the retry policy reads). It is used only for plain API-key clients (not Azure, not
    token providers); anything unusual falls back to the client's public ``post``.
    """

    def __init__(self, aclient: Any) -> None:
        self.http = aclient._client
        self.url = str(aclient.base_url).rstrip("/") + "/chat/completions"
        headers = {**aclient.default_headers, **aclient.auth_headers}
        self.headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        self.make_error = aclient._make_status_error_from_response

    @classmethod
    def for_client(cls, aclient: Any) -> DirectPost | None:
        import openai

        if (
            type(aclient) is not openai.AsyncOpenAI
            or not isinstance(aclient.api_key, str)
            or aclient.default_query
        ):
            return None
        try:
            direct = cls(aclient)
        except Exception:  # a future openai without these internals: use the public path
            return None
        if "Authorization" not in direct.headers or not hasattr(direct.http, "post"):
            return None
        return direct

    async def __call__(self, body: dict[str, Any]) -> Any:
        response = await self.http.post(self.url, json=body, headers=self.headers)
        if response.status_code >= 400:
            raise self.make_error(response)
        return response.json()


async def send(
    aclient: Any,
    direct: DirectPost | None,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
) -> Any:
    """One chat completion: the direct path when the client allows it, else the client's own methods."""
    import openai

    body = {"model": model, "messages": messages, **params}
    if direct is not None:
        return await direct(body)
    if isinstance(aclient, openai.AsyncOpenAI):
        response_class = raw_response_class()
        if response_class is not None:
            raw = await aclient.post("/chat/completions", body=body, cast_to=response_class)
            return raw.json()
    return await aclient.chat.completions.create(**body)


def parse_completion(response: Any) -> CachedAnswer:
    """Text, usage and finish reason from a completion (a JSON dict or the client's model object)."""
    if not isinstance(response, dict):
        response = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    choices = response.get("choices") or []
    choice = choices[0] if choices else {}
    message = choice.get("message") or {}
    usage = response.get("usage") or {}
    return CachedAnswer(
        output=message.get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )


def describe_error(exc: BaseException) -> str:
    from finetune_wb._retry import status_code_of

    status = status_code_of(exc)
    text = str(exc).strip() or type(exc).__name__
    prefix = f"HTTP {status}: " if status is not None else f"{type(exc).__name__}: "
    return (prefix + text)[:500]
