"""The Starlette app (middleware for auth, faults, latency, rate limits, journal; admin routes) and its thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator.api import routes
from finetune_wb.emulator.azure import AzurePaths
from finetune_wb.emulator.bodies import BodyLimit, admin_json
from finetune_wb.emulator.clock import ManualClock
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.faults import FaultRule, JournalEntry, LatencyRule, RateDecision, reason_of
from finetune_wb.emulator.state import ApiError

ADMIN_PREFIX = "/_emulator"

CLIENT_CLOSED = 499
"""The status journalled for a request whose client went away before its answer (nginx's "client closed")."""

logger = logging.getLogger("finetune_wb.emulator")


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _fault_error(rule: FaultRule) -> ApiError:
    headers = {}
    if rule.retry_after_ms is not None:
        headers["retry-after-ms"] = str(rule.retry_after_ms)
    if rule.status == 429:
        msg, code = "Rate limit reached (injected by the emulator).", "rate_limit_exceeded"
    elif rule.status >= 500:
        msg, code = "The server had an error while processing your request (injected by the emulator).", None
    else:
        msg, code = f"Injected error {rule.status}.", None
    return ApiError(rule.status, rule.message or msg, code=rule.code or code, headers=headers)


class EmulatorMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, core: Core) -> None:
        super().__init__(app)
        self.core = core

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path, method = request.url.path, request.method
        if path.startswith(ADMIN_PREFIX):
            return await call_next(request)
        core = self.core
        arrived = core.now()
        fault: str | None = None
        rate: RateDecision | None = None
        delay = core.faults.latency_for(method, path)
        if delay > 0:
            await asyncio.sleep(delay)
        response: Response
        auth = request.headers.get("authorization", "")
        has_key = auth.lower().startswith("bearer ") and auth[7:].strip()
        if not has_key and not request.headers.get("api-key", "").strip():  # api-key: Azure's header
            response = error_response(
                ApiError(
                    401,
                    "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' (the emulator "
                    "accepts any non-empty key).",
                    code="invalid_api_key",
                )
            )
        elif (rate := core.faults.check_rate_limit(path)) is not None and not rate.allowed:
            fault = "rate_limit"
            response = error_response(
                ApiError(
                    429,
                    f"Rate limit reached for requests on {path}: limit {rate.limit} per minute. Retry after "
                    f"{rate.retry_after_ms} ms.",
                    code="rate_limit_exceeded",
                    headers=rate.headers(),
                )
            )
        else:
            rule = core.faults.take_fault(method, path)
            if rule is not None and not rule.after_handler:
                fault = "fault"
                response = error_response(_fault_error(rule))
            else:
                if path.startswith("/v1/"):
                    await run_in_threadpool(core.tick_all)  # validating a big file stalls no other request
                response = await call_next(request)
                if rule is not None:
                    fault = "fault"
                    response = error_response(_fault_error(rule))
        if rate is not None and rate.allowed:
            response.headers.update(rate.headers())
        core.faults.record(
            JournalEntry(
                method=method,
                path=path,
                status=response.status_code,
                time=arrived,
                query=request.url.query,
                body_size=int(request.headers.get("content-length") or 0),
                fault=fault,
            )
        )
        return response


def admin_routes(core: Core) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def journal(request: Request) -> Response:
        return JSONResponse({"data": [e.model_dump() for e in core.faults.journal()]})

    async def reset(request: Request) -> Response:
        core.reset()
        return JSONResponse({"ok": True})

    async def add_fault(request: Request) -> Response:
        try:
            # the same defaults as Emulator.inject_fault; "method": null matches every method
            body = {"path": "/v1/fine_tuning/jobs", "method": "POST", **(await admin_json(request))}
            rule = FaultRule.model_validate(body)
            core.faults.add_fault(rule)
        except ValueError as exc:
            raise ApiError(400, f"Invalid fault: {reason_of(exc)}") from None
        return JSONResponse(core.faults.describe())

    async def add_latency(request: Request) -> Response:
        try:
            core.faults.add_latency(LatencyRule.model_validate(await admin_json(request)))
        except ValueError as exc:
            raise ApiError(400, f"Invalid latency: {reason_of(exc)}") from None
        return JSONResponse(core.faults.describe())

    async def rate_limit(request: Request) -> Response:
        body = await admin_json(request)
        try:
            core.faults.set_rate_limit(str(body.get("path", "/v1/chat/completions")), body.get("rpm"))
        except ValueError as exc:
            raise ApiError(400, str(exc), param="rpm") from None
        return JSONResponse(core.faults.describe())

    async def fail_job(request: Request) -> Response:
        body = await admin_json(request)
        code = body.get("code", "internal_error")
        message = body.get("message", "The job failed (injected by the emulator).")
        param = body.get("param")
        for key, value in (("code", code), ("message", message), ("param", param)):
            if not (isinstance(value, str) or (key == "param" and value is None)):
                raise ApiError(400, f"'{key}' must be a string, got {value!r}.", param=key)
        job = core.fail_job(request.path_params["job_id"], code=code, message=message, param=param)
        return JSONResponse(job)

    async def advance(request: Request) -> Response:
        if not isinstance(core.clock, ManualClock):
            raise ApiError(
                400,
                "This emulator runs on the wall clock; start it with clock=ManualClock() "
                "to advance time by hand.",
            )
        seconds = (await admin_json(request)).get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ApiError(400, f"'seconds' must be a number >= 0, got {seconds!r}.", param="seconds")
        return JSONResponse({"now": core.clock.advance(float(seconds))})

    async def state(request: Request) -> Response:
        return JSONResponse({**core.faults.describe(), "pace": core.pace, "now": core.now()})

    async def retire_model(request: Request) -> Response:
        body = await admin_json(request)
        model = request.path_params["model"]
        try:
            at = core.shutdowns.set(model, body.get("at", core.now()))
        except ValueError as exc:
            raise ApiError(400, str(exc), param="at") from None
        return JSONResponse({"model": model, "shutdown_at": at, **core.shutdowns.fields(model)})

    p = ADMIN_PREFIX
    return [
        Route(p + "/health", health, methods=["GET"]),
        Route(p + "/journal", journal, methods=["GET"]),
        Route(p + "/state", state, methods=["GET"]),
        Route(p + "/reset", reset, methods=["POST"]),
        Route(p + "/faults", add_fault, methods=["POST"]),
        Route(p + "/latency", add_latency, methods=["POST"]),
        Route(p + "/rate_limit", rate_limit, methods=["POST"]),
        Route(p + "/jobs/{job_id}/fail", fail_job, methods=["POST"]),
        Route(p + "/clock/advance", advance, methods=["POST"]),
        Route(p + "/models/{model:path}/retire", retire_model, methods=["POST"]),
    ]


def build_app(core: Core) -> Starlette:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err = ApiError(404, f"Unknown route: {request.method} {request.url.path}.", code="unknown_url")
        elif exc.status_code == 405:
            err = ApiError(405, f"Method {request.method} is not allowed on {request.url.path}.")
        else:
            err = ApiError(exc.status_code, str(exc.detail))
        return error_response(err)

    async def disconnected(request: Request, exc: Exception) -> Response:
        # A client that gives up mid-request (a timeout, Ctrl-C, a killed process) is normal: one debug line,
        # no traceback. Nobody reads this answer; the journal keeps it as 499.
        logger.debug("client went away during %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED)

    async def crash(request: Request, exc: Exception) -> Response:
        return error_response(ApiError(500, f"The emulator failed: {type(exc).__name__}: {exc}"))

    extra: list[Route] = []
    if core.flavour == "azure":
        from finetune_wb.emulator.management import admin_deployment_routes, management_routes

        extra = [*management_routes(core), *admin_deployment_routes(core, ADMIN_PREFIX)]
    return Starlette(
        routes=[*routes(core), *admin_routes(core), *extra],
        # the body cap sits inside the middleware that journals, so a 413 is journalled like any answer
        middleware=[Middleware(EmulatorMiddleware, core=core), Middleware(BodyLimit, limits=core.limits)],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            ClientDisconnect: disconnected,
            Exception: crash,
        },
    )


class ServerThread:
    """uvicorn serving the app on a socket we bind ourselves (so port 0 gives a known port at once)."""

    def __init__(self, core: Core, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this on Linux: without it small responses wait ~40 ms on delayed ACKs.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            AzurePaths(build_app(core), require_api_version=core.flavour == "azure"),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self._run, name=f"finetune-wb-emulator-{self.port}", daemon=True
        )
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start()
            self.error = exc

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        waited = 0.0
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"the emulator server did not start: {self.error!r}")
            if waited > timeout:
                raise RuntimeError(f"the emulator server did not start within {timeout} s")
            threading.Event().wait(0.01)
            waited += 0.01

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
