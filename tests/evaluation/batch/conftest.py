"""Fixtures of the batch-mode tests: a fast emulator and the evaluate() call they share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.evaluation import BatchOptions, evaluate
from tests.evaluation.test_against_emulator import BASE, examples

OTHER = "gpt-4.1-mini-2025-04-14"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_wait=0.001, max_wait=0.01)
__all__ = [
    "BASE",
    "FAST_RETRY",
    "OTHER",
    "examples",
    "posts",
    "run",
]  # BASE, examples: shared with the sync tests


@pytest.fixture
def emu(finetune_emulator: Any) -> Any:
    finetune_emulator.pace = 0.002  # a batch runs through its lifecycle in ~16 ms
    return finetune_emulator


@pytest.fixture
def manual_emu() -> Any:
    """An emulator on a hand-driven clock: its batches move only when the test advances it."""
    from finetune_wb.emulator import ManualClock, run_emulator

    with run_emulator(clock=ManualClock()) as emulator:
        yield emulator


def run(emu: Any, cache: Path, n: int = 12, models: Any = (BASE, OTHER), **batch: Any) -> Any:
    """evaluate() in batch mode against ``emu`` with fast polling (``batch``: BatchOptions fields)."""
    settings = BatchOptions(**{"poll_interval": 0.01, "max_poll_interval": 0.05, **batch})
    return evaluate(
        examples(n),
        models=list(models),
        client=emu.client(),
        cache=cache,
        progress=False,
        retry=FAST_RETRY,
        mode="batch",
        batch=settings,
    )


def posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status == 200)
