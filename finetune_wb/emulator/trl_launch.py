"""How a TRL job's training process is started and stopped: one process, or one per GPU through accelerate.

- One process (one GPU, or a CPU): ``python -m finetune_wb.emulator.trl_worker SPEC.json``.
- Several processes (``num_processes`` > 1; by default one per visible CUDA GPU when there are several):
  ``python -m accelerate.commands.launch --multi_gpu --num_processes N ... -m finetune_wb.emulator.trl_worker
  SPEC.json``, i.e. ``accelerate launch`` (torchrun underneath): distributed data parallel, NCCL on GPUs,
  gloo when no GPU is visible (which the tests use on a CPU). Only rank 0 writes progress, checkpoints and
  the final model (see :mod:`finetune_wb.emulator.trl_worker`).

Every training process starts in a session (and process group) of its own; cancel, pause and resume signal
that group and every descendant of the launcher (torchrun starts each rank in a session of its own), so no
rank is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

WORKER_MODULE = "finetune_wb.emulator.trl_worker"


def visible_gpus() -> int:
    """CUDA GPUs torch sees here (``CUDA_VISIBLE_DEVICES`` applies); 0 without torch or without CUDA."""
    try:
        import torch
    except ImportError:
        return 0
    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # a broken driver: train on what is left (the CPU), the worker says where
        return 0


def resolve_num_processes(requested: int | None) -> int:
    """``requested`` when given, else one process per visible GPU (1 with one GPU or none)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"num_processes must be >= 1, got {requested}")
        return requested
    return max(1, visible_gpus())


def check_num_processes(requested: int) -> None:
    """Refuse more processes than visible GPUs (two ranks cannot share one GPU here); without a GPU any
    number trains on the CPU."""
    if requested < 1:
        raise ValueError(f"num_processes must be >= 1, got {requested}")
    if requested > 1:
        gpus = visible_gpus()
        if 0 < gpus < requested:
            shown = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise ValueError(
                f"num_processes {requested} needs {requested} GPUs but {gpus} "
                f"{'is' if gpus == 1 else 'are'} visible"
                + (f" (CUDA_VISIBLE_DEVICES={shown})" if shown is not None else "")
                + f"; pass --num-processes {gpus} or fewer, or make more GPUs visible"
            )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free now on ``host``: the rendezvous port of one multi-process job (jobs side by side
    each need their own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_command(
    python: str, spec_path: str | Path, *, num_processes: int, port: int | None = None
) -> list[str]:
    """The command line that trains the job whose spec is ``spec_path``."""
    if num_processes <= 1:
        return [python, "-m", WORKER_MODULE, str(spec_path)]
    return [
        python,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # torchrun with N local processes; on a machine without CUDA they train on the CPU
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",  # the worker's TrainingArguments choose bf16 / fp16 (see trl_devices.precision_for)
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(port if port is not None else free_port()),
        "-m",
        WORKER_MODULE,
        str(spec_path),
    ]


def family(proc: subprocess.Popen[bytes]) -> list[Any]:
    """``psutil.Process`` objects of the training process and all its descendants, now (empty when it is
    gone, or without psutil, which accelerate depends on)."""
    try:
        import psutil
    except ImportError:
        return []
    try:
        leader = psutil.Process(proc.pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def _send(procs: list[Any], sig: int) -> None:
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the training process, its process group and every descendant.

    The group alone is not enough: torchrun starts each rank in a session of its own."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    _send(family(proc)[1:], sig)


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float = 5.0) -> None:
    """Stop the training process and every process it started: SIGTERM, then SIGKILL after ``grace_s``.

    Paused processes get SIGCONT first (a stopped process cannot act on SIGTERM). The descendants are
    listed before the launcher goes (they are re-parented after), so none is left behind."""
    procs = family(proc)
    if proc.poll() is None:
        signal_group(proc, signal.SIGCONT)
        signal_group(proc, signal.SIGTERM)
        _send(procs, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
    if procs:
        import psutil

        _, alive = psutil.wait_procs(procs[1:], timeout=grace_s)
        _send(alive, signal.SIGCONT)
        _send(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # stragglers of the group
        os.killpg(proc.pid, signal.SIGKILL)
