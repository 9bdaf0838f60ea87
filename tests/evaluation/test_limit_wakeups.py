"""AdaptiveLimit wakes only as many waiters as there are free slots (not every waiter on every release)."""

from __future__ import annotations

import asyncio
from typing import Any

from finetune_wb.evaluation.limits import AdaptiveLimit


def test_many_waiters_few_slots_each_wakes_about_once() -> None:
    async def scenario() -> tuple[int, int, int]:
        limit = AdaptiveLimit(4)
        waits = 0
        real_wait = limit._cond.wait

        async def counting_wait() -> Any:
            nonlocal waits
            waits += 1
            return await real_wait()

        limit._cond.wait = counting_wait  # type: ignore[method-assign]
        peak = done = 0

        async def one() -> None:
            nonlocal peak, done
            await limit.acquire()
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0)
            limit.succeeded()
            await limit.release()
            done += 1

        await asyncio.gather(*(one() for _ in range(400)))
        return peak, done, waits

    peak, done, waits = asyncio.run(scenario())
    assert done == 400 and peak <= 4
    assert waits < 4 * 400  # notify_all made this 19,800 (every waiter woken on every release)


def test_a_grown_limit_lets_more_waiters_in() -> None:
    async def scenario() -> int:
        limit = AdaptiveLimit(8)
        limit.limit = 1  # as after a 429: one slot, grows back by one per window of successes
        peak = 0

        async def one() -> None:
            nonlocal peak
            await limit.acquire()
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.001)
            limit.succeeded()
            await limit.release()

        await asyncio.gather(*(one() for _ in range(200)))
        return peak

    assert asyncio.run(scenario()) >= 4  # the limit grew and the extra slots were used
