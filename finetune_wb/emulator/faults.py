"""Fault injection, latency, server-side rate limits and the request journal."""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import deque
from typing import Any

from pydantic import BaseModel, Field, field_validator

from finetune_wb.emulator.clock import Clock

JOURNAL_LIMIT = 100_000


def reason_of(exc: ValueError) -> str:
    """A one-line reason for a bad argument (pydantic's multi-line report reduced to 'field: message')."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}".lstrip(": ") for e in errors()
        )
    return str(exc)


class JournalEntry(BaseModel):
    """One request the emulator answered (admin routes under ``/_emulator/`` are not recorded)."""

    method: str
    path: str
    status: int
    time: float = Field(description="clock time when the request arrived (seconds since the epoch)")
    query: str = ""
    body_size: int = 0
    fault: str | None = Field(default=None, description="'fault', 'rate_limit' or None")


class FaultRule(BaseModel):
    """Make requests matching ``method`` and ``path`` (a glob, e.g. ``/v1/fine_tuning/jobs/*``) fail."""

    path: str = "*"
    method: str | None = None
    status: int = 500
    count: int | None = 1
    retry_after_ms: int | None = None
    after_handler: bool = False
    probability: float | None = None
    code: str | None = None
    message: str | None = None

    @field_validator("count")
    @classmethod
    def _count_positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"count must be >= 1 (or None for every matching request), got {value}")
        return value

    @field_validator("probability")
    @classmethod
    def _probability_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value <= 1.0:
            raise ValueError(f"probability must be in (0, 1], got {value}")
        return value

    @field_validator("retry_after_ms")
    @classmethod
    def _retry_after_non_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"retry_after_ms must be >= 0, got {value}")
        return value

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path) or fnmatch.fnmatchcase(path.rstrip("/"), self.path)


class LatencyRule(BaseModel):
    seconds: float
    path: str | None = None
    method: str | None = None

    @field_validator("seconds")
    @classmethod
    def _seconds_non_negative(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError(f"latency seconds must be >= 0, got {value}")
        return value

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


class RateDecision(BaseModel):
    """The outcome of a rate-limited request: allowed or not, and what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int

    def headers(self) -> dict[str, str]:
        out = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
        }
        if not self.allowed:
            out["retry-after-ms"] = str(self.retry_after_ms)
        return out


class Faults:
    """Thread-safe registry of faults, latencies, rate limits and the journal."""

    def __init__(self, clock: Clock, *, seed: int = 0) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.rules: list[FaultRule] = []
        self.latencies: list[LatencyRule] = []
        self.limits: dict[str, int] = {}
        self._hits: dict[str, deque[float]] = {}
        # bounded so that a long-running `finetune-wb emulator` does not grow without limit
        self.entries: deque[JournalEntry] = deque(maxlen=JOURNAL_LIMIT)

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latencies.clear()
            self.limits.clear()
            self._hits.clear()
            self.entries.clear()

    def add_fault(self, rule: FaultRule) -> None:
        if rule.status < 400 or rule.status > 599:
            raise ValueError(f"inject_fault: status must be an HTTP error (400-599), got {rule.status}")
        with self._lock:
            self.rules.append(rule)

    def add_latency(self, rule: LatencyRule) -> None:
        with self._lock:
            self.latencies.append(rule)

    def set_rate_limit(self, path: str, rpm: int | None) -> None:
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int)):
            raise ValueError(
                f"rate_limit: rpm must be an integer >= 1 (or None to remove the limit), got {rpm!r}"
            )
        with self._lock:
            if rpm is None:
                self.limits.pop(path, None)
                self._hits.pop(path, None)
            else:
                if rpm < 1:
                    raise ValueError("rate_limit: rpm must be >= 1 (or None to remove the limit)")
                self.limits[path] = rpm
                self._hits[path] = deque()

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        """The first matching rule that fires now (its count is used up), or None."""
        with self._lock:
            for rule in list(self.rules):
                if not rule.matches(method, path):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self.rules.remove(rule)
                return rule
        return None

    def latency_for(self, method: str, path: str) -> float:
        with self._lock:
            return sum(r.seconds for r in self.latencies if r.matches(method, path))

    def check_rate_limit(self, path: str) -> RateDecision | None:
        """None when ``path`` has no limit; else whether this request is allowed (and counted if so)."""
        with self._lock:
            matching = [p for p in self.limits if fnmatch.fnmatchcase(path, p)]
            if not matching:
                return None
            key = matching[0]
            limit = self.limits[key]
            hits = self._hits.setdefault(key, deque())
            now = self.clock.now()
            while hits and hits[0] <= now - 60.0:
                hits.popleft()
            if len(hits) >= limit:
                wait = max(0.001, hits[0] + 60.0 - now)
                return RateDecision(
                    allowed=False, limit=limit, remaining=0, retry_after_ms=int(wait * 1000) + 1
                )
            hits.append(now)
            return RateDecision(allowed=True, limit=limit, remaining=limit - len(hits), retry_after_ms=0)

    def record(self, entry: JournalEntry) -> None:
        with self._lock:
            self.entries.append(entry)

    def journal(self) -> list[JournalEntry]:
        with self._lock:
            return list(self.entries)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [r.model_dump() for r in self.rules],
                "latency": [r.model_dump() for r in self.latencies],
                "rate_limits": dict(self.limits),
            }
