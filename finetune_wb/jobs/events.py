"""Fine-tuning job events: typed objects with metrics parsed into numbers, and the one way they are paged.

The API's ``metrics`` events carry a ``data`` object such as
``{"step": 12, "train_loss": 0.41, "train_mean_token_accuracy": 0.88, "total_steps": 90}``; older servers
only wrote the numbers into the message (``"Step 12/90: training loss=0.41"``). :class:`JobEvent` reads
both, so callbacks always find ``event.step`` and ``event.metrics`` filled in when the event has them.

The events endpoint lists newest first and pages backwards with ``after=<older id>``. To fetch only what
is new, :class:`EventCursor` reads from the newest event down until it meets the last event it already
delivered, then hands the new ones over oldest first. A set of delivered ids guards against a server that
re-orders events, so no callback ever sees the same event twice. :func:`job_events` is a fresh cursor's
first fetch: every event of the job, oldest first.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger(__name__)

_STEP_RE = re.compile(r"\bstep\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_MESSAGE_METRICS = {
    "train_loss": re.compile(r"training loss\s*[=:]\s*([-+0-9.eE]+)", re.IGNORECASE),
    "valid_loss": re.compile(r"validation loss\s*[=:]\s*([-+0-9.eE]+)", re.IGNORECASE),
    "train_mean_token_accuracy": re.compile(
        r"training (?:mean )?token accuracy\s*[=:]\s*([-+0-9.eE]+)", re.I
    ),
    "valid_mean_token_accuracy": re.compile(
        r"validation (?:mean )?token accuracy\s*[=:]\s*([-+0-9.eE]+)", re.I
    ),
}


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


class JobEvent(BaseModel):
    """One event of a fine-tuning job, as handed to ``wait_for_job`` callbacks (oldest first, once each)."""

    id: str = Field(description="The event id (unique within the job).")
    created_at: int = Field(description="Unix time the server recorded the event.")
    level: str = Field(default="info", description="info, warn or error.")
    message: str = Field(default="", description="The human-readable message.")
    type: str | None = Field(default=None, description="'message' or 'metrics' (None on older servers).")
    data: dict[str, Any] | None = Field(default=None, description="The raw data object of the event.")
    step: int | None = Field(default=None, description="Training step of a metrics event.")
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Numbers of a metrics event: train_loss, train_mean_token_accuracy, valid_loss, "
        "valid_mean_token_accuracy, full_valid_* and total_steps when the server sent them.",
    )
    job_id: str | None = Field(default=None, description="The job the event belongs to.")

    @property
    def is_metrics(self) -> bool:
        """True when the event carries training metrics."""
        return self.step is not None and bool(self.metrics)

    @property
    def total_steps(self) -> int | None:
        """Total number of training steps, when the event says."""
        total = self.metrics.get("total_steps")
        return int(total) if total is not None else None

    @classmethod
    def from_openai(cls, event: Any, *, job_id: str | None = None) -> JobEvent:
        """Build from an ``openai`` FineTuningJobEvent (or any object/dict with the same fields)."""
        if isinstance(event, dict):
            raw = dict(event)
        elif hasattr(event, "model_dump"):
            raw = event.model_dump(mode="json")
        else:
            raw = {
                k: getattr(event, k, None) for k in ("id", "created_at", "level", "message", "type", "data")
            }
        data = raw.get("data")
        data = data if isinstance(data, dict) else None
        message = str(raw.get("message") or "")
        step, metrics = parse_metrics(data, message)
        return cls(
            id=str(raw["id"]),
            created_at=int(raw.get("created_at") or 0),
            level=str(raw.get("level") or "info"),
            message=message,
            type=raw.get("type"),
            data=data,
            step=step,
            metrics=metrics,
            job_id=job_id,
        )


def parse_metrics(data: dict[str, Any] | None, message: str = "") -> tuple[int | None, dict[str, float]]:
    """Step and numeric metrics from an event's data object, falling back to its message text."""
    metrics: dict[str, float] = {}
    step: int | None = None
    if data:
        for key, value in data.items():
            number = _as_float(value)
            if number is None:
                continue
            if key == "step":
                step = int(number)
            else:
                metrics[key] = number
    if step is None and message:
        match = _STEP_RE.search(message)
        if match:
            step = int(match.group(1))
            metrics.setdefault("total_steps", float(match.group(2)))
            for key, pattern in _MESSAGE_METRICS.items():
                found = pattern.search(message)
                number = _as_float(found.group(1).rstrip(".,")) if found else None
                if number is not None:
                    metrics.setdefault(key, number)
    if step is None:
        return None, {}
    return step, metrics


class EventCursor:
    """Remembers which events of one job were delivered and fetches only newer ones.

    ``client`` is used as given (pass one without the openai client's own retries: ``policy`` retries).
    """

    def __init__(
        self,
        job_id: str,
        *,
        after_event_id: str | None = None,
        page_size: int = 100,
        policy: RetryPolicy,
        client: Any,
    ) -> None:
        self.job_id = job_id
        self.last_id = after_event_id
        self.page_size = page_size
        self.policy = policy
        self.client = client
        self.delivered: set[str] = set()

    def mark_delivered(self, event: JobEvent) -> None:
        """Record that ``event`` was handed over: it is never fetched again and becomes the cursor."""
        self.last_id = event.id
        self.delivered.add(event.id)

    def fetch_new(self, *, mark: bool = True) -> list[JobEvent]:
        """Events newer than the last delivered one, oldest first (possibly several pages).

        ``mark=False`` leaves marking to the caller (:meth:`mark_delivered` after each event was really
        handed over), so an interruption halfway through a batch does not count the rest as delivered.
        """
        collected: list[Any] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size}
            if after is not None:
                kwargs["after"] = after
            page = self.policy.call(self.client.fine_tuning.jobs.list_events, self.job_id, **kwargs)
            data = list(page.data)
            reached_known = False
            for event in data:  # newest first
                if event.id == self.last_id or event.id in self.delivered:
                    reached_known = True
                    break
                collected.append(event)
            if reached_known or not data or page.has_more is False:
                break
            after = data[-1].id
        if self.last_id is not None and not self.delivered and not reached_known:
            # The caller's after_event_id is not among the job's events (wrong job, or pruned): deliver
            # everything rather than silently dropping it, but say so.
            logger.warning("event %s not found for %s; delivering all events", self.last_id, self.job_id)
        collected.reverse()
        events = [JobEvent.from_openai(ev, job_id=self.job_id) for ev in collected]
        if mark:
            for event in events:
                self.mark_delivered(event)
        return events


def job_events(job_id: str, *, client: Any, policy: RetryPolicy, page_size: int = 100) -> list[JobEvent]:
    """Every event of the job (all pages), oldest first; ``client`` and ``policy`` as for EventCursor."""
    return EventCursor(job_id, page_size=page_size, policy=policy, client=client).fetch_new()
