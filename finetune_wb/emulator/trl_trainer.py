"""``TrlTrainer``: jobs that really fine-tune a Hugging Face causal LM with TRL (and PEFT LoRA by default).

Each job trains in a process of its own (:mod:`finetune_wb.emulator.trl_worker`), so the HTTP server keeps
answering. A supervisor thread (and every request, through :meth:`TrlTrainer.tick`) reads the worker's
``progress.jsonl`` and turns it into what OpenAI shows for a job: status, events (one ``metrics`` event a
step with train loss, token accuracy and learning rate; checkpoint and epoch events), checkpoints served as
``ft:...:ckpt-step-N``, the ``step_metrics.csv`` result file, ``trained_tokens`` and ``fine_tuned_model``.
Cancel (or an admin fail) kills the worker; pause stops it (SIGSTOP) and resume continues it (SIGCONT);
a worker that dies fails its job with the tail of its stderr.

Where things live: ``OUTPUT_DIR/<job id>/`` holds ``spec.json``, ``progress.jsonl``, ``stderr.log``,
``checkpoint-<step>/`` (one per epoch) and ``final/`` (the adapter, or the whole model with ``full=True``).
A job's runtime record keeps ``adapters`` (model id -> directory) and ``base_model`` (the model trained),
so models survive a restart; a job a restart interrupted is failed with that reason.

The tracking layer reads ``GET /v1/fine_tuning/jobs/{id}`` and finds the adapter in the job's
``local_adapter`` field (``{"path", "base_model", "kind": "lora" | "full"}``), which only this trainer sets.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from finetune_wb.emulator import lifecycle
from finetune_wb.emulator.state import Store
from finetune_wb.emulator.trl_launch import (
    check_num_processes,
    resolve_num_processes,
    signal_group,
    stop_group,
    worker_command,
)
from finetune_wb.errors import EmulatorError
from finetune_wb.schema import TERMINAL_JOB_STATUSES

LOCAL_EXTRA_HINT = "pip install 'finetune-wb[local]'"
CSV_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


def require_local_extra() -> None:
    """Raise a clear error when torch / transformers / trl / peft are not installed."""
    import importlib.util

    missing = [
        m for m in ("torch", "transformers", "trl", "peft", "datasets") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise EmulatorError(
            f"training with --trainer trl needs {', '.join(missing)}, which are not installed; "
            f"install them with {LOCAL_EXTRA_HINT}"
        )


class TrlTrainer:
    """Real fine-tuning of ``model`` (a Hugging Face id or a local directory) behind the emulator's API.

    ``served_name`` is the model name jobs use (default: ``model`` as given). ``full=True`` fine-tunes every
    weight instead of a LoRA adapter of rank ``lora_r``. ``output_dir`` defaults to ``trl/`` in the
    emulator's state directory. ``max_new_tokens`` caps chat answers that ask for no length. The learning rate
    is ``learning_rate_multiplier`` x ``base_learning_rate`` (default 1e-4 with LoRA, 1e-5 for full
    fine-tuning; "auto" is a multiplier of 2). ``num_processes`` trains each job in that many processes through
    ``accelerate launch`` (default: one per visible GPU, see :mod:`finetune_wb.emulator.trl_launch`);
    ``gradient_checkpointing`` trades compute for activation memory.
    """

    name = "trl"

    def __init__(
        self,
        model: str,
        *,
        served_name: str | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        full: bool = False,
        lora_r: int = 16,
        max_length: int = 1024,
        max_new_tokens: int = 64,
        base_learning_rate: float | None = None,
        poll_s: float = 0.2,
        python: str | None = None,
        num_processes: int | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        require_local_extra()
        if num_processes is not None:
            try:
                check_num_processes(num_processes)
            except ValueError as exc:
                raise EmulatorError(str(exc)) from None
        self.num_processes = num_processes  # None: resolved (GPUs visible) when the first job starts
        self.gradient_checkpointing = gradient_checkpointing
        self.model = model
        self.served_name = served_name or model
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.full, self.lora_r, self.max_length = full, lora_r, max_length
        self.max_new_tokens = max_new_tokens
        self.base_learning_rate = base_learning_rate
        self.poll_s = poll_s
        self.python = python or sys.executable
        self.store: Store | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.offsets: dict[str, int] = {}
        self.chat_cache: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
        self._chat_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- Trainer protocol ----------------------------------------------------------------------------------
    def base_models(self) -> list[str]:
        return [self.served_name]

    def attach(self, store: Store) -> None:
        self.store = store
        if self.output_dir is None:
            self.output_dir = store.root / "trl"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with store.lock:
            now = _now()
            for job in store.jobs.values():
                rt = store.runtime.get(job["id"], {})
                if rt.get("external") and job["status"] not in TERMINAL_JOB_STATUSES:
                    lifecycle.fail(
                        store,
                        job,
                        now,
                        code="server_restarted",
                        param=None,
                        message=f"The job {job['id']} failed: the server stopped while it was training "
                        f"{rt.get('base_model', job['model'])}. Create the job again (its files are kept).",
                    )
        self._thread = threading.Thread(
            target=self._supervise, name="finetune-wb-trl-supervisor", daemon=True
        )
        self._thread.start()

    def tick(self, store: Store, job: dict[str, Any], now: float) -> None:
        self._advance(store, job)

    def chat_model(self, store: Store, model: str) -> Any:
        path: str | None = None
        base = self.model
        if model != self.served_name:
            with store.lock:
                job = store.fine_tuned_models().get(model)
                rt = store.runtime.get(job["id"], {}) if job is not None else {}
                path = (rt.get("adapters") or {}).get(model)
                base = rt.get("base_model", self.model)
            if path is None:
                return None
        key = (base, path)
        with self._chat_lock:
            cached = self.chat_cache.get(key)
            if cached is None:
                from finetune_wb.emulator.hf_chat import HfChatModel

                cached = HfChatModel(base, path, max_new_tokens=self.max_new_tokens)
                self.chat_cache[key] = cached
                while len(self.chat_cache) > 3:  # keep a few loaded models, not every checkpoint
                    self.chat_cache.popitem(last=False)
            self.chat_cache.move_to_end(key)
            return cached

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for proc in self.procs.values():
            _kill(proc)
        self.procs.clear()

    # --- the supervisor --------------------------------------------------------------------------------------
    def _supervise(self) -> None:
        store = self.store
        assert store is not None
        while not self._stop.wait(self.poll_s):
            try:
                with store.lock:
                    for job in list(store.jobs.values()):
                        if store.runtime.get(job["id"], {}).get("external"):
                            self._advance(store, job)
                    for job_id in [j for j in self.procs if j not in store.jobs]:  # forgotten by a reset
                        _kill(self.procs.pop(job_id))
            except Exception:  # never let one bad job stop the supervision of the others
                import logging

                logging.getLogger("finetune_wb.emulator").exception("TRL supervisor")

    def _advance(self, store: Store, job: dict[str, Any]) -> None:
        with store.lock:
            rt = store.runtime.get(job["id"])
            if rt is None or not rt.get("external"):
                return
            proc = self.procs.get(job["id"])
            status = job["status"]
            if status in TERMINAL_JOB_STATUSES:
                if proc is not None:  # cancelled or failed from outside: stop the training
                    _kill(proc)
                    self.procs.pop(job["id"], None)
                return
            if proc is None:
                if status == "validating_files" and not rt.get("started_worker"):
                    self._start(store, job, rt)
                return
            if status == "paused" and not rt.get("stopped"):
                signal_group(proc, signal.SIGSTOP)  # the launcher and every rank
                rt["stopped"] = True
            elif status != "paused" and rt.get("stopped"):
                signal_group(proc, signal.SIGCONT)
                rt["stopped"] = False
            self._read(store, job, rt)
            if job["status"] not in TERMINAL_JOB_STATUSES and proc.poll() is not None:
                self._read(store, job, rt)  # the last lines written before it exited
            if job["status"] not in TERMINAL_JOB_STATUSES and proc.poll() is not None:
                self._crashed(store, job, rt, proc.returncode)
            store.save()

    def _job_dir(self, job_id: str) -> Path:
        assert self.output_dir is not None
        return self.output_dir / job_id

    def _start(self, store: Store, job: dict[str, Any], rt: dict[str, Any]) -> None:
        jdir = self._job_dir(job["id"])
        jdir.mkdir(parents=True, exist_ok=True)
        init_adapter = None
        parent = store.fine_tuned_models().get(job["model"]) if job["model"] != self.served_name else None
        if parent is not None:  # continued fine-tuning from one of this server's models
            init_adapter = (store.runtime.get(parent["id"], {}).get("adapters") or {}).get(job["model"])
        mtype = job["method"]["type"]
        spec = {
            "job_id": job["id"],
            "base_model": self.model,
            "init_adapter": init_adapter,
            "training_file": str(store.blob_path(job["training_file"])),
            "validation_file": str(store.blob_path(job["validation_file"]))
            if job.get("validation_file")
            else None,
            "method": mtype,
            "hyperparameters": job["method"][mtype]["hyperparameters"],
            "seed": job["seed"],
            "output_dir": str(jdir),
            "full": self.full,
            "lora_r": self.lora_r,
            "max_length": self.max_length,
            "base_learning_rate": self.base_learning_rate,
            "gradient_checkpointing": self.gradient_checkpointing,
        }
        if self.num_processes is None:
            self.num_processes = resolve_num_processes(None)
        spec["num_processes"] = self.num_processes
        (jdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        (jdir / "progress.jsonl").write_text("", encoding="utf-8")
        stderr = open(jdir / "stderr.log", "wb")  # noqa: SIM115 - the child writes it
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true"}
        self.procs[job["id"]] = subprocess.Popen(
            worker_command(self.python, jdir / "spec.json", num_processes=self.num_processes),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a group of its own: cancel / pause reach every rank
        )
        stderr.close()
        rt.update(started_worker=True, base_model=self.model, job_dir=str(jdir), adapters={}, metrics=[])
        self.offsets[job["id"]] = 0

    def _read(self, store: Store, job: dict[str, Any], rt: dict[str, Any]) -> None:
        path = self._job_dir(job["id"]) / "progress.jsonl"
        offset = self.offsets.get(job["id"], 0)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self.offsets[job["id"]] = offset + end
        for line in chunk[:end].splitlines():
            if line.strip() and job["status"] not in TERMINAL_JOB_STATUSES:
                self._record(store, job, rt, json.loads(line))

    def _record(self, store: Store, job: dict[str, Any], rt: dict[str, Any], rec: dict[str, Any]) -> None:
        t, kind = float(rec.get("time") or _now()), rec.get("type")
        add = lifecycle.add_event
        if kind == "started":
            hp = rec["hyperparameters"]
            mtype = job["method"]["type"]
            job["method"][mtype]["hyperparameters"].update(
                {k: hp[k] for k in job["method"][mtype]["hyperparameters"]}
            )
            job["hyperparameters"] = {
                k: hp[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")
            }
            rt.update(total_steps=rec["total_steps"], steps_per_epoch=rec["steps_per_epoch"])
            rt.update(trained_tokens=rec["trained_tokens"], learning_rate=rec["learning_rate"])
            add(store, job["id"], t, "Files validated, moving job to queued state")
            add(
                store,
                job["id"],
                t,
                f"Fine-tuning job started (TRL on {rec.get('device', '?')}, "
                f"{'full fine-tuning' if self.full else 'LoRA'} of {self.model}, learning rate "
                f"{rec['learning_rate']:g})",
            )
            job["status"] = "running"
        elif kind == "step":
            data = {k: v for k, v in rec.items() if k not in ("type", "time")}
            rt["metrics"].append(data)
            add(
                store,
                job["id"],
                t,
                f"Step {rec['step']}/{rec['total_steps']}: training loss={rec['train_loss']:.4f}",
                data=data,
                type="metrics",
            )
        elif kind == "checkpoint":
            name = f"{rt['ft_name']}:ckpt-step-{rec['step']}"
            rt["adapters"][name] = rec["path"]
            store.checkpoints.setdefault(job["id"], []).append(
                {
                    "id": "ftckpt_" + os.urandom(12).hex()[:24],
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": int(t),
                    "fine_tuned_model_checkpoint": name,
                    "fine_tuning_job_id": job["id"],
                    "metrics": {"step": float(rec["step"]), **rec.get("metrics", {})},
                    "step_number": rec["step"],
                }
            )
            add(store, job["id"], t, f"Epoch {rec['epoch']} finished at step {rec['step']}")
            add(store, job["id"], t, f"Checkpoint created at step {rec['step']}")
        elif kind == "done":
            result = store.add_file(
                data=base64.b64encode(_csv(rt["metrics"]).encode()),
                filename="step_metrics.csv",
                purpose="fine-tune-results",
                now=t,
            )
            rt["adapters"][rt["ft_name"]] = rec["path"]
            job.update(
                status="succeeded",
                fine_tuned_model=rt["ft_name"],
                finished_at=int(t),
                estimated_finish=None,
                trained_tokens=rec["trained_tokens"],
                result_files=[result["id"]],
                local_adapter={
                    "path": rec["path"],
                    "base_model": self.model,
                    "kind": "full" if self.full else "lora",
                },
            )
            add(store, job["id"], t, f"New fine-tuned model created: {rt['ft_name']}")
            add(store, job["id"], t, "The job has successfully completed")
        elif kind == "error":
            code = rec.get("code") or "training_failed"
            param = {
                "invalid_training_file": "training_file",
                "invalid_validation_file": "validation_file",
            }.get(code)
            lifecycle.fail(store, job, t, code=code, message=f"The job failed: {rec['message']}", param=param)

    def _crashed(self, store: Store, job: dict[str, Any], rt: dict[str, Any], returncode: int) -> None:
        tail = ""
        try:
            text = (self._job_dir(job["id"]) / "stderr.log").read_text(encoding="utf-8", errors="replace")
            tail = " ".join(text.strip().splitlines()[-3:])[-600:]
        except OSError:
            pass
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        lifecycle.fail(
            store,
            job,
            _now(),
            code="trainer_crashed",
            param=None,
            message=f"The job failed: the training process of {job['id']} ({self.model}) {how}"
            + (f": {tail}" if tail else "")
            + f". See {self._job_dir(job['id']) / 'stderr.log'}.",
        )
        leftover = self.procs.pop(job["id"], None)
        if leftover is not None:  # what is left of its group (ranks die with the launcher: die_with_parent)
            _kill(leftover)


def _csv(metrics: list[dict[str, Any]]) -> str:
    rows = [",".join(CSV_COLUMNS)]
    for m in metrics:
        rows.append(
            f"{m['step']},{m.get('train_loss', '')},{m.get('train_mean_token_accuracy', '')},"
            f"{m.get('valid_loss', '')},{m.get('valid_mean_token_accuracy', '')}"
        )
    return "\n".join(rows) + "\n"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        stop_group(proc)  # SIGCONT + SIGTERM to the whole group, SIGKILL after 5 s


def _now() -> float:
    import time

    return time.time()
