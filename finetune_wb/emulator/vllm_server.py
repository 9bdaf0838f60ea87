"""A vLLM OpenAI server with runtime LoRA loading: a child process this server starts, or one already running.

:class:`VllmServer` launches ``vllm serve MODEL --enable-lora --max-loras N --max-lora-rank R`` with
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (or attaches to ``url``), waits until ``GET /health`` answers 200,
and then talks to it over HTTP: ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}``,
``POST /v1/unload_lora_adapter`` ``{"lora_name"}``, ``GET /v1/models`` and ``POST /v1/chat/completions``.
Loading is idempotent: a name already loaded (known here, listed by ``/v1/models``, or refused by vLLM with
"has already been loaded") is not loaded again.

The child runs in a session of its own (so stopping it stops vLLM's engine processes too) and, on Linux,
gets SIGTERM when the thread that started it ends (the main thread: when this process dies, even by
``kill -9``; start it from a thread that lives as long as the server). Its stdout and stderr go to ``log_path``; the end
of that log is in every error about it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune_wb.emulator.trl_launch import free_port
from finetune_wb.errors import EmulatorError

VLLM_INSTALL_HINT = "pip install vllm"
RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
#: the values vLLM accepts for --max-lora-rank (vllm/config/lora.py, MaxLoRARanks)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
_PROBE_NAME = "finetune-wb-probe-not-an-adapter"
_HEADER = "--- finetune-wb serve started vLLM"


class VllmError(EmulatorError):
    """vLLM did not start, stopped, or refused what this server asked of it."""


def vllm_lora_rank(lora_r: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds adapters of rank ``lora_r``."""
    for rank in VLLM_LORA_RANKS:
        if rank >= lora_r:
            return rank
    raise VllmError(
        f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}, not {lora_r}; train with a smaller --lora-r"
    )


def default_vllm_command() -> list[str] | None:
    """How to run ``vllm``: the script beside this Python, else the one on PATH, else None (not installed)."""
    import importlib.util
    import shutil

    beside = Path(sys.executable).parent / "vllm"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("vllm")
    if found:
        return [found]
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    return None


def _die_with_parent() -> Any:
    """A ``preexec_fn`` that makes the child get SIGTERM when the thread that started it dies (Linux), or
    None. ``prctl`` is looked up here, before the fork: the child only makes the system call."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return preexec


class VllmServer:
    """One vLLM OpenAI server serving ``model`` as ``served_name`` with LoRA adapters loaded at runtime.

    Without ``url`` it is a child process (``command`` + ``serve MODEL ...``; ``command`` defaults to the
    installed ``vllm``); with ``url`` (e.g. ``http://127.0.0.1:8000``) it is a server started elsewhere,
    which must serve ``served_name`` and have runtime LoRA loading on.
    """

    def __init__(
        self,
        model: str,
        *,
        served_name: str | None = None,
        url: str | None = None,
        command: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_loras: int = 4,
        max_lora_rank: int = 16,
        gpu_memory_utilization: float = 0.5,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 600.0,
        request_timeout_s: float = 600.0,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model, self.served_name = model, served_name or model
        self.attached = url is not None
        self.command = list(command) if command else None
        self.host, self.port = host, port
        self.max_loras, self.max_lora_rank = max_loras, max_lora_rank
        self.gpu_memory_utilization = gpu_memory_utilization
        self.extra_args = list(extra_args)
        self.startup_timeout_s, self.request_timeout_s = startup_timeout_s, request_timeout_s
        self.log_path = Path(log_path) if log_path is not None else None
        self.url = url.rstrip("/").removesuffix("/v1") if url else ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.loaded: dict[str, str] = {}  # adapter name -> path, as vLLM holds them
        self._lock = threading.Lock()
        self._http: Any = None

    # --- starting and stopping ---------------------------------------------------------------------------
    def argv(self) -> list[str]:
        """The ``vllm serve`` command line of the child."""
        if self.command is None:
            found = default_vllm_command()
            if found is None:
                raise VllmError(
                    f"serving through vLLM needs vllm, which is not installed: {VLLM_INSTALL_HINT}"
                )
            self.command = found
        return [
            *self.command, "serve", self.model,
            "--host", self.host, "--port", str(self.port),
            "--served-model-name", self.served_name,
            "--enable-lora", "--max-loras", str(self.max_loras), "--max-lora-rank", str(self.max_lora_rank),
            "--gpu-memory-utilization", f"{self.gpu_memory_utilization:g}",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> VllmServer:
        """Start (or reach) vLLM and check it serves the base model with runtime LoRA loading on."""
        import httpx

        headers = (
            {"Authorization": f"Bearer {os.environ['VLLM_API_KEY']}"}
            if os.environ.get("VLLM_API_KEY")
            else {}
        )
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.request_timeout_s, connect=10.0), headers=headers
        )
        try:
            if self.attached:
                self._wait_healthy(deadline=time.monotonic() + min(self.startup_timeout_s, 30.0))
            else:
                self._launch()
            self._check_serving()
        except BaseException:
            self.close()
            raise
        return self

    def _launch(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        argv = self.argv()
        self.url = f"http://{self.host}:{self.port}"
        env = {**os.environ, RUNTIME_LORA_ENV: "True"}
        log = open(self.log_path, "ab") if self.log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        if log is not subprocess.DEVNULL:
            log.write(f"{_HEADER} {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(argv)}\n".encode())  # type: ignore[union-attr]
            log.flush()  # type: ignore[union-attr]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # stopping its session stops vLLM's engine processes too
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise VllmError(
                f"could not run {' '.join(argv[:2])}: {exc}. Install vLLM ({VLLM_INSTALL_HINT})."
            ) from exc
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        self._wait_healthy(deadline=time.monotonic() + self.startup_timeout_s)

    def _wait_healthy(self, *, deadline: float) -> None:
        last = ""
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise VllmError(
                    f"vLLM ({self._what()}) exited with status {self.proc.returncode} before it was ready"
                    f"{self._tail()}"
                )
            try:
                if self._http.get(f"{self.url}/health", timeout=5.0).status_code == 200:
                    return
                last = "GET /health did not answer 200"
            except Exception as exc:  # not listening yet
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                hint = (
                    "raise --vllm-startup-timeout if the model is still downloading or loading"
                    if not self.attached
                    else "check --vllm-url and that the server is up"
                )
                raise VllmError(f"vLLM at {self.url} was not ready in time ({last}); {hint}{self._tail()}")
            time.sleep(0.2)

    def _check_serving(self) -> None:
        """The base model is served, what is loaded already is known, and runtime LoRA loading is on."""
        cards = self.models()
        ids = [str(c.get("id")) for c in cards]
        if self.served_name not in ids:
            raise VllmError(
                f"vLLM at {self.url} serves {ids}, not {self.served_name!r}: start it with "
                f"--served-model-name {self.served_name} (the base model jobs fine-tune)"
            )
        for card in cards:  # adapters a vLLM we attach to holds already (after a restart of this server)
            if card.get("parent") and card.get("id") != self.served_name:
                self.loaded[str(card["id"])] = str(card.get("root") or "")
        resp = self._http.post(f"{self.url}/v1/unload_lora_adapter", json={"lora_name": _PROBE_NAME})
        data = _json(resp)  # vLLM's own 404 names the adapter ({"error": ...}; before 0.7: {"message": ...})
        if resp.status_code in (404, 405) and "error" not in data and "message" not in data:  # no such route
            raise VllmError(
                f"vLLM at {self.url} does not load LoRA adapters at runtime: start it with "
                f"{RUNTIME_LORA_ENV}=True and --enable-lora"
            )

    def close(self) -> None:
        """Stop the child (SIGTERM to its session, SIGKILL after 30 s); an attached server keeps running."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._http is not None:
            self._http.close()
            self._http = None

    # --- requests ------------------------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        resp = self._request("GET", "/v1/models")
        self._raise_for(resp, "GET /v1/models")
        return list(_json(resp).get("data") or [])

    def load_adapter(self, name: str, path: str) -> bool:
        """Load the adapter in ``path`` as ``name``; False when it was loaded already (no second copy)."""
        with self._lock:
            if name in self.loaded:
                return False
            resp = self._request("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
            if resp.status_code == 400 and "has already been loaded" in _message(resp):
                self.loaded[name] = path
                return False
            self._raise_for(resp, f"loading the adapter {path} as {name}")
            self.loaded[name] = path
            return True

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            resp = self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
            if resp.status_code != 404:  # 404: not loaded (any more)
                self._raise_for(resp, f"unloading {name}")
            self.loaded.pop(name, None)

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """vLLM's status and JSON answer to a chat completion request."""
        resp = self._request("POST", "/v1/chat/completions", json=body)
        return resp.status_code, _json(resp)

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        if self._http is None:
            raise VllmError(f"vLLM at {self.url or '(not started)'} is not running (the server is stopping)")
        try:
            return self._http.request(method, f"{self.url}{path}", **kw)
        except httpx.TransportError as exc:
            gone = ""
            if self.proc is not None and self.proc.poll() is not None:
                gone = f"; vLLM ({self._what()}) exited with status {self.proc.returncode}{self._tail()}"
            raise VllmError(f"vLLM at {self.url} did not answer {method} {path}: {exc}{gone}") from exc

    def _raise_for(self, resp: Any, doing: str) -> None:
        if resp.status_code >= 400:
            raise VllmError(f"vLLM at {self.url} refused {doing} ({resp.status_code}): {_message(resp)}")

    def _what(self) -> str:
        return f"pid {self.proc.pid if self.proc else '?'}, {' '.join(self.argv()[:3])}"

    def _tail(self, lines: int = 8) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        starts = [i for i, line in enumerate(text) if line.startswith(_HEADER)]
        text = text[starts[-1] + 1 :] if starts else text  # this start's lines, not an earlier one's
        tail = "\n  ".join(text[-lines:])
        return f". End of {self.log_path}:\n  {tail}" if tail else f" (nothing in {self.log_path})"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads a session of its own: this reaches vLLM's engine too
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(OSError):
            proc.send_signal(sig)


def _json(resp: Any) -> dict[str, Any]:
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _message(resp: Any) -> str:
    """vLLM's error message: ``{"error": {"message", ...}}`` (older versions: ``{"message", ...}``)."""
    data = _json(resp)
    err = data.get("error")
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    if data.get("message"):
        return str(data["message"])
    if data.get("detail"):
        return str(data["detail"])
    return str(resp.text)[:500]
