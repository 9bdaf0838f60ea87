"""Where a training process trains and in which precision, and which rank of several it is.

The rule (:func:`precision_for`), applied by :mod:`finetune_wb.emulator.trl_worker` in each process:

| device | LoRA (default) | full fine-tuning |
|---|---|---|
| no CUDA GPU (CPU) | float32 weights, no mixed precision | float32, no mixed precision |
| CUDA GPU with bf16 (Ampere and later: A100, H100, L4, RTX 30xx+) | bf16 base weights, bf16 mixed precision | float32 master weights, bf16 mixed precision |
| CUDA GPU without bf16 (V100, T4, RTX 20xx) | fp16 base weights, fp16 mixed precision (the adapter trains in float32) | float32 master weights, fp16 mixed precision |

LoRA freezes the base weights, so they are kept in 16 bits (half the memory); the adapter itself is float32
(PEFT upcasts it), which fp16 mixed precision needs for its gradient scaler. Full fine-tuning keeps float32
master weights (about 16 bytes a parameter with AdamW) so small updates are not rounded away. Each process of
a multi-GPU job uses the GPU of its local rank (``accelerate`` sets it).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Precision:
    """How one training process holds and computes its weights."""

    device: str  # "cuda" | "cpu"
    load_dtype: str  # "float32" | "bfloat16" | "float16": the dtype from_pretrained loads the weights in
    bf16: bool  # TrainingArguments(bf16=...)
    fp16: bool  # TrainingArguments(fp16=...)

    def describe(self) -> str:
        if not (self.bf16 or self.fp16):
            return f"{self.device}, {self.load_dtype}"
        return f"{self.device}, {self.load_dtype} weights, {'bf16' if self.bf16 else 'fp16'} mixed precision"


def precision_for(*, cuda: bool, bf16_supported: bool, full: bool) -> Precision:
    """The rule of the module docstring (pure: the tests check every row)."""
    if not cuda:
        return Precision("cpu", "float32", bf16=False, fp16=False)
    if bf16_supported:
        return Precision("cuda", "float32" if full else "bfloat16", bf16=True, fp16=False)
    return Precision("cuda", "float32" if full else "float16", bf16=False, fp16=True)


def detect_precision(*, full: bool) -> Precision:
    """:func:`precision_for` on this process's hardware (imports torch)."""
    import torch

    cuda = bool(torch.cuda.is_available())
    return precision_for(cuda=cuda, bf16_supported=cuda and bool(torch.cuda.is_bf16_supported()), full=full)


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def world_size() -> int:
    """Processes training this job (``WORLD_SIZE``, set by ``accelerate launch`` / torchrun; 1 alone)."""
    return max(1, int(os.environ.get("WORLD_SIZE") or 1))


def rank() -> int:
    """This process's rank among them (``RANK``; 0 alone)."""
    return int(os.environ.get("RANK") or 0)


def is_main_process() -> bool:
    return rank() == 0


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent (the launcher) dies.

    A rank of a multi-process job lives in a session of its own (torchrun puts it there); without this, a
    launcher killed with ``kill -9`` would leave its ranks training on. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher was already gone before the call
        os._exit(1)
