"""Serving a trainer's models through vLLM: the base model and every LoRA fine-tune and checkpoint.

:class:`VllmServing` wraps a :class:`~finetune_wb.emulator.trainers.Trainer` (the TRL trainer in ``finetune-wb
serve --serve-with vllm``): training, jobs and events stay the trainer's; what changes is who answers chat
requests. It loads each LoRA adapter the trainer made (a job's ``adapters`` runtime record: model id ->
directory holding ``adapter_config.json``) into a :class:`~finetune_wb.emulator.vllm_server.VllmServer`
under its ``ft:...`` id:

- at start, for the fine-tuned models and checkpoints kept from before a restart;
- while jobs run, within ``poll_s`` of a checkpoint or a job's success (a watcher thread);
- at the latest on the first chat request for that id.

A name is loaded once (see :meth:`VllmServer.load_adapter`); a deleted model is unloaded. Chat requests for
the base model and the adapters are forwarded to vLLM as they came (``forwards_requests``: chat.py passes
the checked request body through), so vLLM batches concurrent requests. A full fine-tune (no adapter, a
whole model directory) is answered by the wrapped trainer (transformers), as without vLLM.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.emulator.state import ApiError
from finetune_wb.emulator.vllm_server import VllmError, VllmServer

if TYPE_CHECKING:
    from finetune_wb.emulator.answerers import Answer
    from finetune_wb.emulator.state import Store
    from finetune_wb.emulator.trainers import ChatModel, Trainer

log = logging.getLogger("finetune_wb.emulator.vllm")


def is_lora_dir(path: str | None) -> bool:
    """Whether ``path`` holds a PEFT adapter (what vLLM loads at runtime), not a whole model."""
    return bool(path) and (Path(str(path)) / "adapter_config.json").is_file()


class VllmChatModel:
    """A model id answered by vLLM: chat.py hands :meth:`complete` the whole checked request body."""

    forwards_requests = True

    def __init__(self, server: VllmServer, model: str, reload: Callable[[], bool] | None = None) -> None:
        self.server, self.model, self.reload = server, model, reload

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """vLLM's ``chat.completion`` for ``body`` (an ApiError with vLLM's message when it refuses)."""
        try:
            status, data = self.server.chat({**body, "model": self.model})
            if status == 404 and self.reload is not None and self.reload():  # vLLM lost it (e.g. restarted)
                status, data = self.server.chat({**body, "model": self.model})
        except VllmError as exc:
            raise ApiError(503, f"{exc}. Restart finetune-wb serve.", code="vllm_unavailable") from exc
        if status >= 400 or "choices" not in data:
            err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else data
            message = str(err.get("message") or err.get("detail") or data)
            raise ApiError(
                status if status >= 400 else 502,
                f"vLLM refused the request for {self.model}: {message}",
                param=err.get("param") if isinstance(err.get("param"), str) else None,
                code="vllm_error",
            )
        return data

    def answer(self, messages: list[dict[str, Any]]) -> Answer:
        data = self.complete({"messages": messages})
        return str(data["choices"][0]["message"].get("content") or "")


class VllmServing:
    """A trainer whose base model and LoRA models answer through vLLM (see the module docstring)."""

    def __init__(self, trainer: Trainer, server: VllmServer, *, poll_s: float = 1.0) -> None:
        self.trainer, self.server, self.poll_s = trainer, server, poll_s
        self.name = trainer.name
        self.store: Store | None = None
        self.failed: dict[str, str] = {}  # adapter name -> why vLLM refused it (the watcher does not retry)
        self.ours: set[str] = set()  # names this server loaded (the ones it unloads when they are deleted)
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def served_name(self) -> str:
        return self.server.served_name

    # --- Trainer protocol ----------------------------------------------------------------------------------
    def base_models(self) -> Sequence[str]:
        return self.trainer.base_models()

    def attach(self, store: Store) -> None:
        self.trainer.attach(store)
        self.store = store
        self.sync()  # what was fine-tuned before a restart is servable before the first request
        self._thread = threading.Thread(target=self._watch, name="finetune-wb-vllm-adapters", daemon=True)
        self._thread.start()

    def tick(self, store: Store, job: dict[str, Any], now: float) -> None:
        self.trainer.tick(store, job, now)

    def chat_model(self, store: Store, model: str) -> ChatModel | None:
        if model == self.server.served_name:
            return VllmChatModel(self.server, model)
        path = self._adapters(store).get(model)
        if path is None or not is_lora_dir(path):  # not one of ours, or a full fine-tune: transformers
            return self.trainer.chat_model(store, model)
        if model not in self.server.loaded:  # not loaded yet: now, before the request goes to vLLM
            with self._sync_lock:
                self._load(model, path)
        if model not in self.server.loaded:
            raise ApiError(
                500,
                f"vLLM could not load the adapter of {model} from {path}: {self.failed.get(model)}. "
                "Restart finetune-wb serve with a --vllm-max-lora-rank as large as the adapter's rank, or "
                "with --serve-with transformers.",
                code="adapter_not_loaded",
            )
        return VllmChatModel(self.server, model, reload=lambda: self._reload(model, path))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.trainer.close()
        finally:
            self.server.close()

    # --- adapters ------------------------------------------------------------------------------------------
    def _adapters(self, store: Store) -> dict[str, str]:
        """Model id -> LoRA adapter directory, for every live model of this base model."""
        out: dict[str, str] = {}
        with store.lock:
            for name, job in store.fine_tuned_models().items():
                rt = store.runtime.get(job["id"], {})
                path = (rt.get("adapters") or {}).get(name)
                if path and rt.get("base_model", self.server.model) == self.server.model:
                    out[name] = str(path)
        return out

    def sync(self) -> list[str]:
        """Load every adapter not loaded yet and unload deleted ones; the names loaded now."""
        store = self.store
        if store is None:
            return []
        wanted = {n: p for n, p in self._adapters(store).items() if is_lora_dir(p)}
        with store.lock:
            deleted = set(store.deleted_models)
        done = []
        with self._sync_lock:
            for name, path in wanted.items():
                if name not in self.failed and self._load(name, path):
                    done.append(name)
            for name in [
                n for n in self.server.loaded if n not in wanted and (n in self.ours or n in deleted)
            ]:
                try:
                    self.server.unload_adapter(name)
                    self.ours.discard(name)
                    log.info("vLLM: unloaded %s", name)
                except VllmError as exc:
                    log.warning("vLLM: could not unload %s: %s", name, exc)
        return done

    def _load(self, name: str, path: str) -> bool:
        """Load one adapter (called with the sync lock held); True when it was loaded now."""
        if name in self.server.loaded:
            return False
        try:
            loaded = self.server.load_adapter(name, path)
        except VllmError as exc:
            self.failed[name] = str(exc)
            log.warning("vLLM: %s", exc)
            return False
        self.failed.pop(name, None)
        self.ours.add(name)
        if loaded:
            log.info("vLLM: loaded %s from %s", name, path)
        return loaded

    def _reload(self, name: str, path: str) -> bool:
        """Load ``name`` again after vLLM answered that it does not know it; True when it is loaded now."""
        with self._sync_lock:
            self.server.loaded.pop(name, None)
            self._load(name, path)
            return name in self.server.loaded

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.sync()
            except Exception:  # a bad record never stops the loading of the others
                log.exception("vLLM adapter watcher")
