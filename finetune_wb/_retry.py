"""The one retry policy: which failures are transient, how long to wait, and how often to try.

Transient: HTTP 408, 409, 429 and 5xx answers, timeouts and dropped connections. The wait honours the
server's ``retry-after-ms`` / ``retry-after`` headers when present; otherwise it grows exponentially with
jitter up to a cap. ``sleep`` / ``async_sleep`` are injectable so tests never wait for real.

Use it for every call that is safe to repeat. Calls that are not (creating a job) need their own guard;
see :func:`finetune_wb.jobs.operations.create_job`.

A server that has not sent a single HTTP response in this process (a wrong ``OPENAI_BASE_URL``, a server that
is down) is given :data:`UNREACHED_ATTEMPTS` tries, a few seconds, not the full policy: every command then
gives up on it alike (``eval`` does the same per row). Once a server has answered (any status, or a call
through :meth:`RetryPolicy.call` that succeeded), a dropped connection to it is retried as the policy says,
so a network blip during a long wait does not end it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 429})

UNREACHED_ATTEMPTS = 3
"""Tries per call while its server has sent no HTTP response in this process (about 1-2 s of back-off)."""

_answered: set[str] = set()  # "scheme://host:port" of servers that sent an HTTP response in this process
_answered_lock = threading.Lock()


def _server_key(url: Any) -> str | None:
    """``scheme://host:port`` of a URL (no credentials, path or query), or None when it has no host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(url))
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


def note_answered(url: Any) -> None:
    """Remember that the server of ``url`` sent an HTTP response in this process."""
    key = _server_key(url)
    if key is not None:
        with _answered_lock:
            _answered.add(key)


def has_answered(url: Any) -> bool:
    """Whether the server of ``url`` sent any HTTP response in this process."""
    key = _server_key(url)
    with _answered_lock:
        return key is not None and key in _answered


def _request_url(exc: BaseException) -> Any:
    """The URL an HTTP-library (or ``openai``) exception was about, or None."""
    try:
        return exc.request.url  # type: ignore[attr-defined]
    except Exception:  # no request attached (or httpx raises RuntimeError for a missing one)
        return None


def _client_url(fn: Any) -> Any:
    """The base URL of the ``openai`` client behind a bound resource method (``client.files.list``)."""
    owner = getattr(fn, "__self__", None)
    client = getattr(owner, "_client", None)
    return getattr(client, "base_url", None)


def describe_connection_error(exc: BaseException, server: str | None = None) -> str:
    """A connection failure, naming the server we tried (``server`` when the error does not say) and what
    to check; the one wording of every command (``jobs``, ``status``, ``upload``, ``sync``, ``eval``)."""
    from finetune_wb._secrets import safe_url

    url = safe_url(str(_request_url(exc) or "")) or safe_url(server) or "the API server"
    said = str(exc).strip() or type(exc).__name__
    return (
        f"could not reach {url} ({said}); check OPENAI_BASE_URL (or the client's base_url), "
        "that the server is running, and the network"
    )


def is_unreached(exc: BaseException) -> bool:
    """A connection-level failure (no HTTP status) to a server that has not answered in this process."""
    if status_code_of(exc) is not None:
        return False
    url = _request_url(exc)
    return url is not None and not has_answered(url)


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status of an API error, or None for errors without one."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: 408/409/429/5xx, timeouts, connection errors."""
    status = status_code_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUS or status >= 500
    openai = sys.modules.get("openai")
    if openai is not None and isinstance(exc, openai.APIConnectionError):
        return True  # includes APITimeoutError
    for mod_name in ("httpx", "httpx2"):
        mod = sys.modules.get(mod_name)
        if mod is not None and isinstance(exc, mod.TransportError):
            return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``retry-after``), or None."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """Retry transient failures with exponential back-off and jitter, honouring ``retry-after``.

    Attributes:
        max_attempts: total tries, the first included.
        unreached_attempts: total tries while every failure is a connection error to a server that has
            sent no HTTP response in this process (None: no such limit).
        initial_wait: the first back-off, in seconds (doubles each attempt).
        max_wait: cap on a computed back-off.
        max_retry_after: cap on a server-requested wait.
        jitter: spread waits randomly over [wait/2, wait] so clients do not retry in lock-step.
        retry_on: predicate deciding whether an exception is worth retrying.
        on_retry: called as ``on_retry(exc, attempt, wait_seconds)`` before each wait.
    """

    max_attempts: int = 6
    unreached_attempts: int | None = UNREACHED_ATTEMPTS
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    jitter: bool = True
    retry_on: Callable[[BaseException], bool] = is_transient
    on_retry: Callable[[BaseException, int, float], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def wait_seconds(self, exc: BaseException | None, attempt: int) -> float:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        if exc is not None:
            requested = retry_after_seconds(exc)
            if requested is not None:
                return min(requested, self.max_retry_after)
        base = min(self.max_wait, self.initial_wait * (2 ** max(0, attempt - 1)))
        if self.jitter:
            return base / 2 + self.rng.uniform(0, base / 2)
        return base

    def _tenacity_kwargs(self) -> dict[str, Any]:
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            return self.wait_seconds(exc, state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if self.on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    delay = state.next_action.sleep if state.next_action is not None else 0.0
                    self.on_retry(exc, state.attempt_number, delay)

        def retry_on(exc: BaseException) -> bool:
            if status_code_of(exc) is not None:  # an HTTP answer, if only an error: the server is there
                url = getattr(getattr(exc, "response", None), "url", None) or _request_url(exc)
                if url is not None:
                    note_answered(url)
            return self.retry_on(exc)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            exc = state.outcome.exception() if state.outcome is not None else None
            return (
                self.unreached_attempts is not None
                and exc is not None
                and state.attempt_number >= self.unreached_attempts
                and is_unreached(exc)
            )

        return {
            "stop": stop,
            "wait": wait,
            "retry": tenacity.retry_if_exception(retry_on),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)``, retrying transient failures."""
        import tenacity

        retrying = tenacity.Retrying(sleep=self.sleep, **self._tenacity_kwargs())
        result = retrying(fn, *args, **kwargs)
        _note_success(fn)
        return result

    async def acall(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)``, retrying transient failures."""
        import tenacity

        retrying = tenacity.AsyncRetrying(sleep=self.async_sleep, **self._tenacity_kwargs())
        result: T = await retrying(fn, *args, **kwargs)
        _note_success(fn)
        return result


def _note_success(fn: Any) -> None:
    url = _client_url(fn)
    if url is not None:
        note_answered(url)


DEFAULT_RETRY = RetryPolicy()
"""The policy used when a function is not given one."""


def policy_or_default(retry: RetryPolicy | None, sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
    """``retry`` when the caller gave one, else :data:`DEFAULT_RETRY` sleeping with ``sleep`` (tests inject it)."""
    if retry is not None:
        return retry
    return dataclasses.replace(DEFAULT_RETRY, sleep=sleep)
