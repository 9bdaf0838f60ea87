"""Model id shapes (OpenAI and Azure) and the retirement table's lookup."""

from __future__ import annotations

import datetime as dt

import pytest

from finetune_wb.model_ids import base_model_of, is_fine_tuned, parse_model_id
from finetune_wb.retirement_dates import SHUTDOWN_DATES, Retirement, retirement_of, shutdown_date_of


@pytest.mark.parametrize(
    ("model", "base", "shape", "checkpoint"),
    [
        ("ft:gpt-4o-mini-2024-07-18:acme:legal:abc123", "gpt-4o-mini-2024-07-18", "openai-ft", False),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini-2024-07-18", "openai-ft", False),
        ("ft:gpt-4.1:acme:x:abc:ckpt-step-40", "gpt-4.1", "openai-checkpoint", True),
        (
            "gpt-4o-mini-2024-07-18.ft-0e208cf33a6a466994aff31a08aba678",
            "gpt-4o-mini-2024-07-18",
            "azure-ft",
            False,
        ),
        (
            "gpt-35-turbo-0613.ft-5fd1918ee65d4cd38a5dcf6835066ed7-legal",
            "gpt-35-turbo-0613",
            "azure-ft",
            False,
        ),
        ("ftchkpt-0123456789abcdef", None, "azure-checkpoint", True),
        ("gpt-4.1-mini", "gpt-4.1-mini", "base", False),
    ],
)
def test_parse_model_id(model: str, base: str | None, shape: str, checkpoint: bool) -> None:
    parsed = parse_model_id(model)
    assert (parsed.base, parsed.shape, parsed.checkpoint) == (base, shape, checkpoint)
    assert parsed.fine_tuned is (shape != "base")
    assert is_fine_tuned(model) is (shape != "base")
    assert base_model_of(model) == (base or model)


def test_checkpoint_step_and_suffix() -> None:
    parsed = parse_model_id("ft:gpt-4.1:acme:legal:abc:ckpt-step-40")
    assert (parsed.step, parsed.suffix) == (40, "legal")
    assert parse_model_id("gpt-35-turbo-0613.ft-5fd1918ee65d-legal").suffix == "legal"


@pytest.mark.parametrize(
    ("model", "date"),
    [
        ("gpt-3.5-turbo-0125", dt.date(2026, 10, 23)),
        ("ft:gpt-3.5-turbo-1106:acme::x1", dt.date(2026, 10, 23)),
        ("ft:gpt-4-0613:acme::x1", dt.date(2026, 10, 23)),
        ("ft:gpt-4o-mini-2024-07-18:acme::x1", dt.date(2027, 1, 14)),
        ("gpt-4o-2024-08-06", dt.date(2027, 1, 14)),
        ("gpt-4.1-mini-2025-04-14.ft-0123456789ab", dt.date(2027, 1, 14)),
        ("gpt-4.1-nano", None),  # not in the reports: a prefix alone does not date it
        ("gpt-5-mini", None),
        ("ftchkpt-0123456789abcdef", None),
    ],
)
def test_shutdown_date_lookup(model: str, date: dt.date | None) -> None:
    assert shutdown_date_of(model) == date
    row = retirement_of(model)
    assert (row is None) == (date is None)


def test_every_row_names_its_source_and_the_table_is_overridable() -> None:
    assert all(row.source for row in SHUTDOWN_DATES.values())
    mine = {**SHUTDOWN_DATES, "my-base": Retirement(dt.date(2030, 1, 1), "our own contract")}
    assert shutdown_date_of("ft:my-base:acme::1", table=mine) == dt.date(2030, 1, 1)
    assert shutdown_date_of("ft:my-base:acme::1") is None
