"""Client-side pacing for the evaluation engine: RPM/TPM token buckets and an AIMD concurrency limit.

The buckets keep a steady pace (a capacity of one request for RPM) rather than bursting, because servers
count requests in sliding windows and a burst followed by silence both trips their limit and wastes it.
The concurrency limit halves on a rate-limit answer (at most once per "generation" of requests, so forty
429s from one burst count as one signal) and grows by one after a full window of successes — the same
additive-increase/multiplicative-decrease rule TCP uses for congestion.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """Refills at ``per_minute / 60`` units a second up to ``capacity``; ``acquire`` may go into debt.

    ``initial`` (default: full) is the starting level; a capacity a little above it tolerates a late
    wake-up without losing the slot, while never allowing a burst above ``initial`` at the start.
    A request larger than the capacity (a long prompt against a small TPM) waits for a full bucket and
    then borrows, so it is delayed rather than refused forever.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        capacity: float = 1.0,
        initial: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = capacity
        self.level = self.capacity if initial is None else min(initial, capacity)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:  # first come, first served
            need = min(amount, self.capacity)
            while True:
                self._refill()
                if self.level >= need - 1e-9:  # float dust must not stall a waiter
                    self.level -= amount
                    return
                await self._sleep((need - self.level) / self.rate)


class AdaptiveLimit:
    """A semaphore whose size moves between 1 and ``maximum`` (AIMD on rate-limit answers)."""

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be >= 1, got {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.decreases = 0
        self._generation = 0
        self._successes = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a slot; returns the generation the request starts in (pass it to :meth:`rate_limited`)."""
        async with self._cond:
            while self.in_flight >= self.limit:
                await self._cond.wait()
            self.in_flight += 1
            return self._generation

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            # Wake only as many waiters as there are free slots (usually one; more after the limit grew).
            # notify_all woke every waiting request on every release: with 2,000 rows queued behind 64
            # slots that was most of the engine's CPU.
            self._cond.notify(max(1, self.limit - self.in_flight))

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0

    def rate_limited(self, generation: int) -> None:
        """Halve the limit, unless a request of the same generation already did."""
        if generation != self._generation:
            return
        self._generation += 1
        self._successes = 0
        self.decreases += 1
        self.limit = max(1, self.limit // 2)
