"""The training process of one TRL job: ``python -m finetune_wb.emulator.trl_worker SPEC.json``.

:class:`~finetune_wb.emulator.trl_trainer.TrlTrainer` writes the job's spec (files, base model,
hyperparameters, output directory) and starts this module in a process of its own, so training never
blocks the HTTP server and a cancel is a kill. Progress goes to ``progress.jsonl`` next to the spec, one
JSON object a line, flushed as it happens::

    {"type": "started", "total_steps": N, "hyperparameters": {...}, "learning_rate": x, "trained_tokens": T}
    {"type": "step", "step": s, "train_loss": ..., "train_mean_token_accuracy": ..., "learning_rate": ...}
    {"type": "checkpoint", "step": s, "epoch": e, "path": DIR, "metrics": {...}}
    {"type": "done", "path": DIR, "trained_tokens": T}
    {"type": "error", "code": ..., "message": ...}

A process that dies without ``done`` or ``error`` (killed, segfault) is reported by the trainer from its
exit status and the tail of its stderr.

Launched N times by ``accelerate launch`` (:mod:`finetune_wb.emulator.trl_launch`), every rank trains its
share of each batch, but only rank 0 writes progress, checkpoints and the final model; an ``error`` record
comes from whichever rank failed (the first one ends the job). Device and dtype follow
:func:`finetune_wb.emulator.trl_devices.precision_for`; failures are named by
:func:`finetune_wb.emulator.trl_failures.failure_of`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

#: learning_rate = learning_rate_multiplier x this; "auto" is a multiplier of AUTO_LR_MULTIPLIER.
BASE_LEARNING_RATE = {"lora": 1e-4, "full": 1e-5}
AUTO_LR_MULTIPLIER = 2.0
AUTO_EPOCHS = 3


class ModelLoadError(RuntimeError):
    """The base model (or the adapter a job continues from) could not be loaded."""


class Progress:
    """``progress.jsonl`` of one job; ``context`` is what an error record reports (phase, step, batch)."""

    def __init__(self, path: Path) -> None:
        from finetune_wb.emulator.trl_devices import is_main_process, rank

        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the life of the process
        self.main, self.rank = is_main_process(), rank()
        self.context: dict[str, Any] = {"phase": "loading"}

    def write(self, record: dict[str, Any]) -> None:
        if not self.main and record.get("type") != "error":  # one writer: rank 0 (errors: any rank)
            return
        if not self.main:
            record = {**record, "rank": self.rank}
        self.fh.write(json.dumps({"time": time.time(), **record}) + "\n")
        self.fh.flush()


def resolve_hyperparameters(
    hp: dict[str, Any], *, n_examples: int, method: str, full: bool, base_learning_rate: float | None = None
) -> dict[str, Any]:
    """OpenAI's hyperparameters with every "auto" replaced by what this trainer uses, and the learning rate
    (``learning_rate_multiplier`` x ``base_learning_rate``, by default 1e-4 for LoRA, 1e-5 for full)."""
    out = dict(hp)
    if out.get("n_epochs", "auto") == "auto":
        out["n_epochs"] = AUTO_EPOCHS
    if out.get("batch_size", "auto") == "auto":
        out["batch_size"] = max(1, min(8, round(n_examples * 0.002)))
    if out.get("learning_rate_multiplier", "auto") == "auto":
        out["learning_rate_multiplier"] = AUTO_LR_MULTIPLIER
    if method == "dpo" and out.get("beta", "auto") == "auto":
        out["beta"] = 0.1
    base = base_learning_rate or BASE_LEARNING_RATE["full" if full else "lora"]
    out["learning_rate"] = float(out["learning_rate_multiplier"]) * base
    return out


def load_model(
    name: str, *, adapter: str | None = None, trainable: bool = False, dtype: Any = None
) -> tuple[Any, Any]:
    """(model, tokenizer) with the real ``from_pretrained``: a Hub id or a local directory; ``dtype``, or
    float32 on CPU and the checkpoint's own dtype on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter or name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if dtype is None:
        dtype = "auto" if torch.cuda.is_available() else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    if adapter is not None and (Path(adapter) / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    elif adapter is not None:  # a full fine-tune: the directory is a whole model
        model = AutoModelForCausalLM.from_pretrained(adapter, dtype=dtype)
    return model, tokenizer


def _callback(progress: Progress, total_steps: int) -> Any:
    from transformers import TrainerCallback

    class ToProgress(TrainerCallback):  # type: ignore[misc]
        last: dict[str, float] = {}  # noqa: RUF012 - one instance per process

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.context.update(phase="training", step=int(state.global_step) + 1)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            logs = logs or {}
            step = int(state.global_step)
            if "eval_loss" in logs:
                self.last["valid_loss"] = float(logs["eval_loss"])
                if "eval_mean_token_accuracy" in logs:
                    self.last["valid_mean_token_accuracy"] = float(logs["eval_mean_token_accuracy"])
                return
            if "loss" not in logs:
                return
            rec: dict[str, Any] = {"type": "step", "step": step, "total_steps": total_steps}
            rec["train_loss"] = float(logs["loss"])
            acc = logs.get("mean_token_accuracy", logs.get("rewards/accuracies"))
            if acc is not None:
                rec["train_mean_token_accuracy"] = float(acc)
            if "learning_rate" in logs:
                rec["learning_rate"] = float(logs["learning_rate"])
            rec.update(self.last)
            self.last_train = rec
            progress.write(rec)

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step = int(state.global_step)
            path = Path(args.output_dir) / f"checkpoint-{step}"
            train = getattr(self, "last_train", {})
            metrics = {k: v for k, v in train.items() if k not in ("type", "total_steps")}
            if "valid_loss" in self.last:
                metrics["full_valid_loss"] = self.last["valid_loss"]
            if "valid_mean_token_accuracy" in self.last:
                metrics["full_valid_mean_token_accuracy"] = self.last["valid_mean_token_accuracy"]
            epoch = round(float(state.epoch or 0))
            progress.write(
                {"type": "checkpoint", "step": step, "epoch": epoch, "path": str(path), "metrics": metrics}
            )

    return ToProgress()


def train(spec: dict[str, Any], progress: Progress) -> None:
    import torch
    from datasets import Dataset

    from finetune_wb.emulator.trl_data import load_rows
    from finetune_wb.emulator.trl_devices import detect_precision, torch_dtype, world_size

    method, full = spec["method"], bool(spec.get("full"))
    out = Path(spec["output_dir"])
    precision, world = detect_precision(full=full), world_size()
    try:
        model, tokenizer = load_model(
            spec["base_model"],
            adapter=spec.get("init_adapter"),
            trainable=True,
            dtype=torch_dtype(precision.load_dtype),
        )
    except Exception as exc:
        raise ModelLoadError(
            f"The base model {spec['base_model']!r} could not be loaded ({type(exc).__name__}: {exc}). Pass a "
            "Hugging Face causal LM id or a local directory holding config.json, the weights and the tokenizer."
        ) from exc
    max_length = int(spec.get("max_length") or 1024)
    progress.context["phase"] = "reading the data"
    rows, tokens = load_rows(
        spec["training_file"], method=method, tokenizer=tokenizer, what="training file", max_length=max_length
    )
    valid = None
    if spec.get("validation_file"):
        valid, _ = load_rows(
            spec["validation_file"],
            method=method,
            tokenizer=tokenizer,
            what="validation file",
            max_length=max_length,
        )
    hp = resolve_hyperparameters(
        spec["hyperparameters"],
        n_examples=len(rows),
        method=method,
        full=full,
        base_learning_rate=spec.get("base_learning_rate"),
    )
    # OpenAI's batch_size is the batch of one optimizer step: with N processes each takes ceil(batch_size / N)
    per_device = math.ceil(int(hp["batch_size"]) / world)
    steps_per_epoch = math.ceil(len(rows) / (per_device * world))
    total = steps_per_epoch * hp["n_epochs"]
    progress.context.update(
        phase="starting the trainer",
        total_steps=total,
        batch_size=int(hp["batch_size"]),
        per_device_batch_size=per_device,
        num_processes=world,
    )
    progress.write(
        {
            "type": "started",
            "total_steps": total,
            "steps_per_epoch": steps_per_epoch,
            "hyperparameters": hp,
            "learning_rate": hp["learning_rate"],
            "trained_tokens": tokens * hp["n_epochs"],
            "device": precision.describe() + (f", {world} processes" if world > 1 else ""),
            "num_processes": world,
            "per_device_batch_size": per_device,
        }
    )
    common: dict[str, Any] = {
        "output_dir": str(out),
        "num_train_epochs": hp["n_epochs"],
        "per_device_train_batch_size": per_device,
        "per_device_eval_batch_size": per_device,
        "learning_rate": hp["learning_rate"],
        "lr_scheduler_type": "linear",
        "seed": int(spec["seed"]),
        "data_seed": int(spec["seed"]),
        "logging_steps": 1,
        "save_strategy": "epoch",
        "save_only_model": True,
        "eval_strategy": "epoch" if valid else "no",
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": precision.device == "cpu",
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "dataloader_num_workers": 0,
        "max_length": max_length,
    }
    if spec.get("gradient_checkpointing"):
        from transformers import TrainingArguments

        names = set(TrainingArguments.__dataclass_fields__)  # transformers 5 renamed it
        key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
        common.update({key: True, f"{key}_kwargs": {"use_reentrant": False}})
    peft_config = None
    if not full and spec.get("init_adapter") is None:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=int(spec.get("lora_r") or 16),
            lora_alpha=2 * int(spec.get("lora_r") or 16),
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    callback = _callback(progress, total)
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer: Any = DPOTrainer(
            model=model,
            args=DPOConfig(beta=float(hp["beta"]), **common),
            train_dataset=Dataset.from_list(rows),
            eval_dataset=Dataset.from_list(valid) if valid else None,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[callback],
        )
    else:
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(completion_only_loss=True, **common),
            train_dataset=Dataset.from_list(rows),
            eval_dataset=Dataset.from_list(valid) if valid else None,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[callback],
        )
    trainer.train()
    progress.context["phase"] = "saving"
    final = out / "final"
    trainer.save_model(str(final))  # rank 0 writes (Trainer.save_model checks args.should_save)
    if progress.main:
        tokenizer.save_pretrained(str(final))
        for ckpt in out.glob("checkpoint-*"):  # each checkpoint is a servable model: give it the tokenizer
            tokenizer.save_pretrained(str(ckpt))
    trainer.accelerator.wait_for_everyone()  # "done" once every rank has finished
    done: dict[str, Any] = {"type": "done", "path": str(final), "trained_tokens": tokens * hp["n_epochs"]}
    if torch.cuda.is_available():
        done["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    progress.write(done)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec_path = Path(args[0])
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    from finetune_wb.emulator.trl_devices import die_with_parent, world_size

    if world_size() > 1:  # a rank of accelerate launch: go when the launcher goes
        die_with_parent()
    progress = Progress(spec_path.parent / "progress.jsonl")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        train(spec, progress)
    except Exception as exc:
        import traceback

        from finetune_wb.emulator.trl_failures import failure_of

        traceback.print_exc()  # the whole story goes to stderr.log
        code, message = failure_of(exc, spec=spec, context=progress.context)
        progress.write({"type": "error", "code": code, "message": message})
        return 1  # the process exits: whatever it held on the GPU is freed
    return 0


if __name__ == "__main__":
    sys.exit(main())
