"""A local OpenAI-compatible fine-tuning server: a stand-in for OpenAI in tests, demos and CI.

    from finetune_wb.emulator import run_emulator

    with run_emulator() as emu:
        client = emu.client()          # openai.OpenAI(base_url=emu.base_url, api_key="sk-test")

Fine-tuned models answer with the training answer of the most similar training prompt; base models answer
deterministically without that knowledge (see :mod:`finetune_wb.emulator.answerers`). It is not a language
model — unless a real trainer is given: ``Emulator(trainer=TrlTrainer("Qwen/Qwen2.5-0.5B-Instruct"))`` (or
``finetune-wb serve --trainer trl``) fine-tunes a Hugging Face model with TRL (see docs/local.md). Starlette
and uvicorn are imported only when a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "BodyLimits": ".limits",
    "Emulator": ".runner",
    "JournalEntry": ".faults",
    "ManualClock": ".clock",
    "NearestNeighbourTrainer": ".trainers",
    "SystemClock": ".clock",
    "Trainer": ".trainers",
    "TrlTrainer": ".trl_trainer",
    "VllmServer": ".vllm_server",
    "VllmServing": ".vllm_backend",
    "run_emulator": ".runner",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.emulator.clock import ManualClock as ManualClock, SystemClock as SystemClock
    from finetune_wb.emulator.faults import JournalEntry as JournalEntry
    from finetune_wb.emulator.limits import BodyLimits as BodyLimits
    from finetune_wb.emulator.runner import Emulator as Emulator, run_emulator as run_emulator
    from finetune_wb.emulator.trainers import (
        NearestNeighbourTrainer as NearestNeighbourTrainer,
        Trainer as Trainer,
    )
    from finetune_wb.emulator.trl_trainer import TrlTrainer as TrlTrainer
    from finetune_wb.emulator.vllm_backend import VllmServing as VllmServing
    from finetune_wb.emulator.vllm_server import VllmServer as VllmServer
