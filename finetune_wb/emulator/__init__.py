"""A local OpenAI-compatible fine-tuning server: a stand-in for OpenAI in tests, demos and CI.

    from finetune_wb.emulator import run_emulator

    with run_emulator() as emu:
        client = emu.client()          # openai.OpenAI(base_url=emu.base_url, api_key="sk-test")

Fine-tuned models answer with the training answer of the most similar training prompt; base models answer
deterministically without that knowledge (see :mod:`finetune_wb.emulator.answerers`). It is not a language
model. Starlette and uvicorn are imported only when a server starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune_wb.emulator.clock import ManualClock, SystemClock
    from finetune_wb.emulator.faults import JournalEntry
    from finetune_wb.emulator.runner import Emulator, run_emulator

_EXPORTS = {
    "Emulator": "runner",
    "JournalEntry": "faults",
    "ManualClock": "clock",
    "SystemClock": "clock",
    "run_emulator": "runner",
}

__all__ = ["Emulator", "JournalEntry", "ManualClock", "SystemClock", "run_emulator"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'finetune_wb.emulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"finetune_wb.emulator.{module}"), name)
    globals()[name] = value
    return value
