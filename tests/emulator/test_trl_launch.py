"""The TRL trainer's launch command, device/precision rule and failure naming (no torch needed here)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune_wb.emulator import trl_devices, trl_launch
from finetune_wb.emulator.trl_data import DataError
from finetune_wb.emulator.trl_failures import failure_of, is_out_of_memory

SPEC = {"base_model": "Qwen/Qwen2.5-0.5B-Instruct", "max_length": 1024, "full": False}
CONTEXT = {"phase": "training", "step": 3, "total_steps": 40, "batch_size": 8, "num_processes": 1}


def test_one_process_runs_the_worker_module_directly() -> None:
    assert trl_launch.worker_command("/py", "/j/spec.json", num_processes=1) == [
        "/py",
        "-m",
        "finetune_wb.emulator.trl_worker",
        "/j/spec.json",
    ]


def test_several_processes_go_through_accelerate_launch() -> None:
    cmd = trl_launch.worker_command("/py", Path("/j/spec.json"), num_processes=4, port=29123)
    assert cmd[:3] == ["/py", "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4" and "--multi_gpu" in cmd
    assert cmd[cmd.index("--main_process_port") + 1] == "29123"
    assert cmd[-3:] == ["-m", "finetune_wb.emulator.trl_worker", "/j/spec.json"]
    other = trl_launch.worker_command("/py", "/j/spec.json", num_processes=2)  # a free port of its own
    assert int(other[other.index("--main_process_port") + 1]) > 0


def test_num_processes_defaults_to_one_per_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trl_launch, "visible_gpus", lambda: 4)
    assert trl_launch.resolve_num_processes(None) == 4
    assert trl_launch.resolve_num_processes(2) == 2  # an explicit value wins
    monkeypatch.setattr(trl_launch, "visible_gpus", lambda: 0)
    assert trl_launch.resolve_num_processes(None) == 1  # no GPU: one process on the CPU
    with pytest.raises(ValueError, match="num_processes must be >= 1"):
        trl_launch.resolve_num_processes(0)


def test_more_processes_than_gpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trl_launch, "visible_gpus", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    trl_launch.check_num_processes(2)
    with pytest.raises(ValueError) as info:
        trl_launch.check_num_processes(4)
    assert str(info.value) == (
        "num_processes 4 needs 4 GPUs but 2 are visible (CUDA_VISIBLE_DEVICES=0,1); pass --num-processes 2 "
        "or fewer, or make more GPUs visible"
    )
    monkeypatch.setattr(trl_launch, "visible_gpus", lambda: 0)
    trl_launch.check_num_processes(4)  # no GPU: processes on the CPU (gloo)


@pytest.mark.parametrize(
    ("cuda", "bf16", "full", "load", "mixed"),
    [
        (False, False, False, "float32", None),
        (False, False, True, "float32", None),
        (True, True, False, "bfloat16", "bf16"),
        (True, True, True, "float32", "bf16"),
        (True, False, False, "float16", "fp16"),
        (True, False, True, "float32", "fp16"),
    ],
)
def test_precision_rule(cuda: bool, bf16: bool, full: bool, load: str, mixed: str | None) -> None:
    p = trl_devices.precision_for(cuda=cuda, bf16_supported=bf16, full=full)
    assert p.device == ("cuda" if cuda else "cpu") and p.load_dtype == load
    assert (p.bf16, p.fp16) == (mixed == "bf16", mixed == "fp16")


def test_rank_and_world_size_come_from_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (trl_devices.rank(), trl_devices.world_size(), trl_devices.is_main_process()) == (0, 1, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (trl_devices.rank(), trl_devices.world_size(), trl_devices.is_main_process()) == (1, 2, False)


class OutOfMemoryError(
    RuntimeError
):  # the class name torch.cuda.OutOfMemoryError / torch.OutOfMemoryError have
    pass


@pytest.mark.parametrize(
    "exc",
    [
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity)"),
        RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.2 GB)"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    ],
)
def test_out_of_memory_is_named_with_the_step_the_batch_and_what_to_do(exc: BaseException) -> None:
    assert is_out_of_memory(exc)
    code, message = failure_of(exc, spec=SPEC, context=CONTEXT)
    assert code == "out_of_memory"
    assert message.startswith(
        "The GPU ran out of memory at training step 3 of 40 fine-tuning Qwen/Qwen2.5-0.5B-Instruct "
        "(batch_size 8, max length 1024 tokens, LoRA)"
    )
    assert "smaller batch_size (e.g. 4)" in message and "--max-length" in message
    assert "--gradient-checkpointing" in message and "--full" not in message


def test_out_of_memory_wrapped_in_another_error_and_with_full_fine_tuning() -> None:
    try:
        try:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        except RuntimeError as inner:
            raise ValueError("while moving the model to cuda:0") from inner
    except ValueError as exc:
        wrapped = exc
    spec = {**SPEC, "full": True, "gradient_checkpointing": True}
    ctx = {"phase": "loading", "batch_size": 1, "num_processes": 2, "per_device_batch_size": 1}
    code, message = failure_of(wrapped, spec=spec, context=ctx)
    assert code == "out_of_memory"
    assert "while loading the model" in message and "full fine-tuning" in message
    assert "1 examples a step on each of 2 processes" in message
    assert "serve without --full" in message and "--gradient-checkpointing" not in message


def test_other_failures_keep_their_codes() -> None:
    assert failure_of(
        DataError("training file line 4: no assistant message to train on"), spec=SPEC, context={}
    ) == (
        "invalid_training_file",
        "training file line 4: no assistant message to train on",
    )
    assert failure_of(DataError("validation file line 2: not valid JSON"), spec=SPEC, context={})[0] == (
        "invalid_validation_file"
    )
    assert failure_of(KeyError("x"), spec=SPEC, context={}) == ("training_failed", "KeyError: 'x'")
    assert not is_out_of_memory(RuntimeError("expected all tensors to be on the same device"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only RuntimeErrors speak for the allocator


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def test_stop_group_ends_the_launcher_and_its_children_even_when_they_ignore_sigterm() -> None:
    child = (
        "import signal, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(_group_members(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_group_members(proc.pid)) == 2
    trl_launch.signal_group(proc, signal.SIGSTOP)  # paused: stop_group must still get through
    trl_launch.stop_group(proc, grace_s=1.0)
    deadline = time.monotonic() + 10
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(proc.pid) == [] and proc.returncode is not None
