"""Model shutdowns in the emulator: a ``shutdown_date`` per model, and what a shut-down model answers.

A model gets a shutdown time from ``Emulator(shutdown_dates={...})``, :meth:`Emulator.retire` or
``POST /_emulator/models/{model}/retire`` (``{"at": unix seconds | "YYYY-MM-DD" | ISO datetime}``; without
``at``: now). A fine-tune inherits the date of its base model unless it has one of its own.

``GET /v1/models`` (and ``/v1/models/{id}``) then carries ``"shutdown_date": "YYYY-MM-DD"`` for it. From that
time on, by the emulator's clock, the model fails the way OpenAI's API fails for a removed model: chat
completions answer 404 ``{"error": {"message": "The model `...` has been deprecated, learn more here: ...",
"type": "invalid_request_error", "param": null, "code": "model_not_found"}}``, and a fine-tuning job on it
as the base model is refused (400, ``model_not_available``). The model stays in the models list with its
date (the real API's list may drop it; a client must not rely on either).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

from finetune_wb.emulator.state import ApiError
from finetune_wb.model_ids import base_model_of

DEPRECATIONS_URL = "https://platform.openai.com/docs/deprecations"

When = float | int | str | dt.date | dt.datetime


def parse_when(value: Any) -> float:
    """Unix seconds from a number, an ISO date (midnight UTC), an ISO datetime, a date or a datetime."""
    if isinstance(value, bool):
        raise ValueError(f"'at' must be unix seconds or an ISO date/datetime, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp()
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return parse_when(dt.date.fromisoformat(text))
            return parse_when(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"'at' must be unix seconds or an ISO date/datetime (2027-01-14), got {value!r}")


class ShutdownSchedule:
    """Model id -> the unix time it shuts down; the configured ones come back on :meth:`reset`."""

    def __init__(self, initial: Mapping[str, When] | None = None) -> None:
        self._lock = threading.Lock()
        self._initial = {model: parse_when(when) for model, when in (initial or {}).items()}
        self._at: dict[str, float] = dict(self._initial)

    def reset(self) -> None:
        with self._lock:
            self._at = dict(self._initial)

    def set(self, model: str, when: When) -> float:
        at = parse_when(when)
        with self._lock:
            self._at[model] = at
        return at

    def shutdown_of(self, model: str) -> float | None:
        """The model's own shutdown time, else its base model's; None when it has none."""
        with self._lock:
            if model in self._at:
                return self._at[model]
            return self._at.get(base_model_of(model))

    def is_shut_down(self, model: str, now: float) -> bool:
        at = self.shutdown_of(model)
        return at is not None and now >= at

    def fields(self, model: str) -> dict[str, Any]:
        """The extra fields of the model object: ``{"shutdown_date": "YYYY-MM-DD"}`` when it has one."""
        at = self.shutdown_of(model)
        if at is None:
            return {}
        return {"shutdown_date": dt.datetime.fromtimestamp(at, tz=dt.timezone.utc).date().isoformat()}

    def check_chat(self, model: str, now: float) -> None:
        """Raise the API's 404 for a removed model when ``model`` has shut down."""
        if self.is_shut_down(model, now):
            raise ApiError(
                404,
                f"The model `{model}` has been deprecated, learn more here: {DEPRECATIONS_URL}",
                code="model_not_found",
            )

    def check_fine_tuning(self, model: Any, now: float) -> None:
        """Refuse a fine-tuning job whose model (or its base) has shut down."""
        if isinstance(model, str) and self.is_shut_down(model, now):
            raise ApiError(
                400,
                f"Model {model!r} is not available for fine-tuning: it has been shut down (see "
                f"{DEPRECATIONS_URL}); pick a current base model.",
                param="model",
                code="model_not_available",
            )

    def describe(self) -> dict[str, str]:
        with self._lock:
            return {
                m: dt.datetime.fromtimestamp(at, tz=dt.timezone.utc).isoformat() for m, at in self._at.items()
            }
