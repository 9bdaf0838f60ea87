"""The one retry policy: which failures are transient, how long to wait, and how often to try.

Transient: HTTP 408, 409, 429 and 5xx answers, timeouts and dropped connections. The wait honours the
server's ``retry-after-ms`` / ``retry-after`` headers when present; otherwise it grows exponentially with
jitter up to a cap. ``sleep`` / ``async_sleep`` are injectable so tests never wait for real.

Use it for every call that is safe to repeat. Calls that are not (creating a job) need their own guard;
see :func:`finetune_wb.jobs.operations.create_job`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 429})


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
        initial_wait: the first back-off, in seconds (doubles each attempt).
        max_wait: cap on a computed back-off.
        max_retry_after: cap on a server-requested wait.
        jitter: spread waits randomly over [wait/2, wait] so clients do not retry in lock-step.
        retry_on: predicate deciding whether an exception is worth retrying.
        on_retry: called as ``on_retry(exc, attempt, wait_seconds)`` before each wait.
    """

    max_attempts: int = 6
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

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": wait,
            "retry": tenacity.retry_if_exception(self.retry_on),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)``, retrying transient failures."""
        import tenacity

        retrying = tenacity.Retrying(sleep=self.sleep, **self._tenacity_kwargs())
        return retrying(fn, *args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)``, retrying transient failures."""
        import tenacity

        retrying = tenacity.AsyncRetrying(sleep=self.async_sleep, **self._tenacity_kwargs())
        return await retrying(fn, *args, **kwargs)


DEFAULT_RETRY = RetryPolicy()
"""The policy used when a function is not given one."""


def policy_or_default(retry: RetryPolicy | None, sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
    """``retry`` when the caller gave one, else :data:`DEFAULT_RETRY` sleeping with ``sleep`` (tests inject it)."""
    if retry is not None:
        return retry
    return dataclasses.replace(DEFAULT_RETRY, sleep=sleep)
