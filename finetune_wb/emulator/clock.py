"""Clocks for the emulator: the wall clock by default, a hand-driven one for deterministic tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now() -> float`` (seconds since the epoch)."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock (``time.time``)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to, so job lifecycles are exact in tests.

    Jobs in the emulator progress according to the clock each time their state is read, so after
    ``clock.advance(10)`` the next request sees every event that would have happened in those 10 seconds.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("ManualClock.advance: seconds must be >= 0; a clock does not run backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Jump to an absolute time (must not be earlier than now)."""
        with self._lock:
            if when < self._now:
                raise ValueError(f"ManualClock.set: {when} is earlier than the current time {self._now}")
            self._now = float(when)
