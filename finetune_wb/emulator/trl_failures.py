"""What a training process reports when it fails: an OpenAI-style error code and a message that says what
went wrong, where (the model, the step, the batch size) and what to do.

| exception | code |
|---|---|
| :class:`~finetune_wb.emulator.trl_data.DataError` | ``invalid_training_file`` / ``invalid_validation_file`` |
| ``ModelLoadError`` (the model or the adapter does not load) | ``model_not_loadable`` |
| ``torch.cuda.OutOfMemoryError`` / ``torch.OutOfMemoryError``, a ``RuntimeError`` saying "CUDA out of memory" (older torch) or "MPS backend out of memory" (Apple GPUs), also when wrapped in another exception | ``out_of_memory`` |
| anything else | ``training_failed`` (the exception's type and text) |

Only the standard library here: the exception is recognised by its class name and text, so this module
(and its tests) need no torch.
"""

from __future__ import annotations

from typing import Any

OOM_CLASS_NAMES = frozenset({"OutOfMemoryError"})  # torch.OutOfMemoryError, torch.cuda.OutOfMemoryError
OOM_TEXTS = (
    "cuda out of memory",
    "mps backend out of memory",
    "cublas_status_alloc_failed",
    "hip out of memory",
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (``raise ... from``, or an exception raised while handling another)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an accelerator's out-of-memory error, raised directly or as the cause of another."""
    for e in _chain(exc):
        if type(e).__name__ in OOM_CLASS_NAMES:
            return True
        if isinstance(e, RuntimeError) and any(t in str(e).lower() for t in OOM_TEXTS):
            return True
    return False


def _where(phase: str, step: int | None, total: int | None) -> str:
    if phase == "training" and step is not None:
        return f"at training step {step}" + (f" of {total}" if total else "")
    return {"loading": "while loading the model", "saving": "while saving the model"}.get(
        phase, f"while {phase}"
    )


def out_of_memory_message(
    exc: BaseException,
    *,
    model: str,
    phase: str,
    step: int | None = None,
    total_steps: int | None = None,
    batch_size: int | None = None,
    per_device_batch_size: int | None = None,
    num_processes: int = 1,
    max_length: int | None = None,
    full: bool = False,
    gradient_checkpointing: bool = False,
) -> str:
    """The ``out_of_memory`` message: where it ran out, with which settings, and what to change."""
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    parts = [f"The GPU ran out of memory {_where(phase, step, total_steps)} fine-tuning {model}"]
    setting = []
    if batch_size is not None:
        setting.append(f"batch_size {batch_size}")
        if num_processes > 1 and per_device_batch_size is not None:
            setting.append(f"{per_device_batch_size} examples a step on each of {num_processes} processes")
    if max_length is not None:
        setting.append(f"max length {max_length} tokens")
    setting.append("full fine-tuning" if full else "LoRA")
    parts.append(f" ({', '.join(setting)}): {first.rstrip('.')}.")
    advice = []
    if batch_size is not None and batch_size > 1:
        advice.append(f"create the job again with a smaller batch_size (e.g. {max(1, batch_size // 2)})")
    else:
        advice.append("create the job again with a smaller batch_size")
    if full:
        advice.append("serve without --full (LoRA trains a small adapter and needs far less memory)")
    advice.append("lower --max-length or shorten the longest examples")
    if not gradient_checkpointing:
        advice.append("serve with --gradient-checkpointing (less activation memory, slower steps)")
    advice.append("or use a GPU with more memory, or several (--num-processes)")
    return "".join(parts) + " To fit: " + "; ".join(advice) + "."


def failure_of(exc: BaseException, *, spec: dict[str, Any], context: dict[str, Any]) -> tuple[str, str]:
    """(code, message) for the error record of a failed training process.

    ``context`` is what the process knew when it failed: ``phase`` ("loading", "data", "training",
    "saving"), ``step``, ``total_steps``, ``batch_size``, ``per_device_batch_size``, ``num_processes``."""
    from finetune_wb.emulator.trl_data import DataError

    if isinstance(exc, DataError):
        code = "invalid_validation_file" if str(exc).startswith("validation") else "invalid_training_file"
        return code, str(exc)
    if is_out_of_memory(exc):
        return "out_of_memory", out_of_memory_message(
            exc,
            model=str(spec.get("base_model")),
            phase=str(context.get("phase") or "training"),
            step=context.get("step"),
            total_steps=context.get("total_steps"),
            batch_size=context.get("batch_size"),
            per_device_batch_size=context.get("per_device_batch_size"),
            num_processes=int(context.get("num_processes") or 1),
            max_length=int(spec.get("max_length") or 1024),
            full=bool(spec.get("full")),
            gradient_checkpointing=bool(spec.get("gradient_checkpointing")),
        )
    if type(exc).__name__ == "ModelLoadError":
        return "model_not_loadable", str(exc)
    return "training_failed", f"{type(exc).__name__}: {exc}"
