"""When base models stop answering, and when OpenAI stops taking fine-tuning jobs: a table that names its source.

The server's own word wins: ``GET /v1/models`` may carry a ``shutdown_date`` per model, and callers that have
it pass it in. This table is the fallback. Every row names where its date comes from, because the dates of
the later retirements differ between secondary sources. Override or extend it with
``shutdown_date_of(model, table={**SHUTDOWN_DATES, "my-base": Retirement(...)})``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from finetune_wb.model_ids import base_model_of

OPENAI_DEPRECATIONS = "https://platform.openai.com/docs/deprecations"
REPORTED_2027 = (
    "reported by secondary sources (dates differ between them): gpt-4o / gpt-4o-mini / gpt-4.1 / gpt-4.1-mini "
    "fine-tunes stop answering with their base models around 2027-01-14"
)

_VERSION = re.compile(r"^\d[\d-]*$")

FINE_TUNING_JOBS_END = dt.date(2027, 1, 6)
"""From this date OpenAI's API takes no new fine-tuning jobs (Azure OpenAI and other services still do)."""


@dataclass(frozen=True)
class Retirement:
    """One row: the date a base model (and every fine-tune of it) stops answering, and where it is from."""

    shutdown_date: dt.date
    source: str
    replacement: str | None = None


SHUTDOWN_DATES: dict[str, Retirement] = {
    # Shut down 2026-10-23 (OpenAI's deprecations page): the seed notebook's models.
    "gpt-3.5-turbo": Retirement(dt.date(2026, 10, 23), OPENAI_DEPRECATIONS, "gpt-4.1-mini"),
    "gpt-4-0613": Retirement(dt.date(2026, 10, 23), OPENAI_DEPRECATIONS, "gpt-4.1"),
    # Reported for around 2027-01-14.
    "gpt-4o-mini-2024-07-18": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5-mini"),
    "gpt-4o-mini": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5-mini"),
    "gpt-4o-2024-08-06": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5"),
    "gpt-4o": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5"),
    "gpt-4.1-mini-2025-04-14": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5-mini"),
    "gpt-4.1-mini": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5-mini"),
    "gpt-4.1-2025-04-14": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5"),
    "gpt-4.1": Retirement(dt.date(2027, 1, 14), REPORTED_2027, "gpt-5"),
}
"""OpenAI's dates, keyed by base model name; a key also covers its dated snapshots (``gpt-3.5-turbo-0125``).
Azure OpenAI retires on its own schedule: pass its dates as ``table=`` where they matter."""


def retirement_of(model: str, table: dict[str, Retirement] | None = None) -> Retirement | None:
    """The table's row for ``model`` (or the base model of a fine-tune), None when the table does not know it."""
    rows = SHUTDOWN_DATES if table is None else table
    name = base_model_of(model).strip().lower()
    best = None
    for key in rows:
        if _names_version_of(name, key.lower()) and (best is None or len(key) > len(best)):
            best = key
    return rows[best] if best is not None else None


def _names_version_of(name: str, key: str) -> bool:
    """``gpt-4o`` covers ``gpt-4o`` and its dated snapshots (``gpt-4o-2024-08-06``), not ``gpt-4o-mini``."""
    if name == key:
        return True
    rest = name[len(key) + 1 :] if name.startswith(key + "-") else None
    return rest is not None and _VERSION.match(rest) is not None


def shutdown_date_of(model: str, table: dict[str, Retirement] | None = None) -> dt.date | None:
    """The table's shutdown date for ``model`` or its base model; None when unknown."""
    row = retirement_of(model, table)
    return row.shutdown_date if row is not None else None
