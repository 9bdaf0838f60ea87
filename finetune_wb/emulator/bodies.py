"""Reading request bodies: 413 over the caps before the body is read, JSON parsed off the event loop."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from finetune_wb.emulator.limits import BodyLimits, parse_json, too_large
from finetune_wb.emulator.state import ApiError


class BodyLimit:
    """ASGI middleware: a declared ``Content-Length`` over the cap answers 413 at once (nothing is read);
    a chunked body is counted as it arrives and answers 413 as soon as it passes the cap."""

    def __init__(self, app: Any, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap, what = self.limits.for_request(scope.get("method", ""), scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > cap:
            err = too_large(what, declared)
            await JSONResponse(err.body(), status_code=413, headers=err.headers)(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise too_large(what, f"more than {cap}")
            return message

        await self.app(scope, counted, send)


def check_json_content_type(request: Request, raw: bytes) -> None:
    """A body sent as something other than JSON (``text/plain``, a form) is a 400, as on the real API."""
    header = request.headers.get("content-type")
    if not raw or header is None:
        return
    media = header.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            400,
            f"Unsupported content type: {media!r}. This API method only accepts 'application/json' "
            f"requests, but you specified the header 'Content-Type: {header}'. Send the body as JSON.",
            code="unsupported_content_type",
        )


async def api_json(request: Request) -> dict[str, Any]:
    """The JSON object of a /v1 request, parsed off the event loop (a big body stalls no other request)."""
    raw = await request.body()
    check_json_content_type(request, raw)
    return await run_in_threadpool(parse_json, raw)


async def admin_json(request: Request) -> dict[str, Any]:
    """The JSON object of an admin request (any content type: ``curl -d`` sends a form type)."""
    return await run_in_threadpool(parse_json, await request.body())
