"""The fake vLLM server's launcher, its journal, and a trainer whose jobs end with a LoRA adapter directory
(no torch), for the tests of serving through vLLM."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAKE_VLLM = Path(__file__).with_name("fake_vllm.py")
#: ``VllmServer(command=...)``: the fake runs through the same launcher as the real ``vllm serve``
FAKE_VLLM_COMMAND = [sys.executable, str(FAKE_VLLM)]


def journal(path: Path) -> list[dict[str, Any]]:
    """The fake's journal lines (one per start, load, unload, chat and stop)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def loads(path: Path) -> list[str]:
    return [e["name"] for e in journal(path) if e["event"] == "load"]


def eventually(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_adapter(path: Path, answer: str, *, rank: int = 8, full: bool = False) -> str:
    """A directory shaped like PEFT's save_pretrained (or, ``full``, like a whole model's)."""
    path.mkdir(parents=True, exist_ok=True)
    if full:
        (path / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    else:
        config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "base_model_name_or_path": "base"}
        (path / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
        (path / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (path / "fake_answer.txt").write_text(answer, encoding="utf-8")
    return str(path)


class FullModel:
    """What the wrapped trainer answers with for a full fine-tune (a stand-in for transformers)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def answer(self, messages: list[dict[str, Any]]) -> str:
        return f"transformers answers for {self.model}"


class AdapterTrainer:
    """A trainer whose jobs succeed on their first tick with one checkpoint and a final LoRA adapter (or, with
    ``full=True``, whole-model directories), recorded the way TrlTrainer records them."""

    name = "fake-adapter"

    def __init__(
        self, root: Path, *, model: str = "/models/base", served_name: str = "base-llm", full: bool = False,
        rank: int = 8,
    ) -> None:  # fmt: skip
        self.root, self.model, self.served_name = root, model, served_name
        self.full, self.rank = full, rank
        self.closed = False

    def base_models(self) -> list[str]:
        return [self.served_name]

    def attach(self, store: Any) -> None:
        self.store = store

    def tick(self, store: Any, job: dict[str, Any], now: float) -> None:
        rt = store.runtime.get(job["id"])
        if rt is None or job["status"] in ("succeeded", "failed", "cancelled"):
            return
        ft, jdir = rt["ft_name"], self.root / job["id"]
        ckpt_name = f"{ft}:ckpt-step-1"
        ckpt = write_adapter(
            jdir / "checkpoint-1", f"checkpoint of {job['id']}", rank=self.rank, full=self.full
        )
        final = write_adapter(jdir / "final", f"fine-tune of {job['id']}", rank=self.rank, full=self.full)
        store.checkpoints.setdefault(job["id"], []).append(
            {"id": "ftckpt_" + job["id"][-12:], "object": "fine_tuning.job.checkpoint", "created_at": int(now),
             "fine_tuned_model_checkpoint": ckpt_name, "fine_tuning_job_id": job["id"], "metrics": {"step": 1.0},
             "step_number": 1}
        )  # fmt: skip
        rt.update(base_model=self.model, adapters={ckpt_name: ckpt, ft: final})
        job.update(
            status="succeeded", fine_tuned_model=ft, finished_at=int(now), estimated_finish=None, trained_tokens=10,
            local_adapter={"path": final, "base_model": self.model, "kind": "full" if self.full else "lora"},
        )  # fmt: skip
        store.save()

    def chat_model(self, store: Any, model: str) -> Any:
        with store.lock:
            job = store.fine_tuned_models().get(model)
        return FullModel(model) if job is not None else None

    def close(self) -> None:
        self.closed = True
