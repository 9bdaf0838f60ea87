"""A job trained by two processes through ``accelerate launch`` (gloo DDP on the CPU here, NCCL on GPUs):
one writer of progress, tokens counted once, cancel and pause reach every process of the group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.emulator.runner import Emulator
from finetune_wb.emulator.trl_data import load_rows
from finetune_wb.emulator.trl_launch import family
from finetune_wb.emulator.trl_trainer import TrlTrainer
from tests.local.helpers import poll_until, wait_for
from tests.local.test_trl_jobs import _upload
from tests.local.tiny import toy_examples, write_jsonl


@pytest.fixture
def two_process_emulator(tiny_model: Path, tmp_path: Path) -> Iterator[Emulator]:
    # with gradient checkpointing too: DDP then runs without find_unused_parameters, as on GPUs
    trainer = TrlTrainer(
        str(tiny_model),
        served_name="tiny-llama",
        lora_r=4,
        max_new_tokens=4,
        num_processes=2,
        gradient_checkpointing=True,
    )
    with Emulator(persist_dir=tmp_path / "state", trainer=trainer) as emu:
        yield emu


def _states(procs: list[Any]) -> list[str]:
    """psutil status of each process still alive (zombies count as gone)."""
    import psutil

    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.status())
        except psutil.Error:
            pass
    return out


def test_two_process_job_reports_once_and_counts_tokens_once(
    two_process_emulator: Emulator, tiny_model: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    client = two_process_emulator.client()
    rows = toy_examples(1)  # 20 examples; batch_size 4 = 2 a step on each of 2 processes: 5 steps an epoch
    hp = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 5.0}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, rows),
        method={"type": "supervised", "supervised": {"hyperparameters": hp}},
    )
    job = wait_for(client, job.id, timeout=120)
    assert job.status == "succeeded", job.error

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    _, tokens = load_rows(
        write_jsonl(tmp_path / "t.jsonl", rows),
        method="supervised",
        tokenizer=tokenizer,
        what="training file",
        max_length=1024,
    )
    assert job.trained_tokens == tokens * 2  # the data set once per epoch, not once per process

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert sorted(steps) == list(range(1, 11))  # each step once: only rank 0 reports
    messages = [e.message for e in events]
    assert sum(m.startswith("Fine-tuning job started") for m in messages) == 1
    assert any("2 processes" in m for m in messages if m.startswith("Fine-tuning job started"))
    assert messages.count("The job has successfully completed") == 1
    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in ckpts) == [5, 10]

    jdir = Path(two_process_emulator.core.trainer.output_dir) / job.id  # type: ignore[attr-defined]
    records = [json.loads(line) for line in (jdir / "progress.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records].count("started") == 1 and not any("rank" in r for r in records)
    assert records[0]["num_processes"] == 2 and records[0]["per_device_batch_size"] == 2
    adapter = job.model_dump()["local_adapter"]
    assert Path(adapter["path"], "adapter_config.json").is_file()
    assert Path(jdir, "checkpoint-5", "tokenizer_config.json").is_file()
    assert isinstance(client.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": "word: apple"}]
    ).choices[0].message.content, str)  # fmt: skip


def _long_running_job(emulator: Emulator) -> tuple[Any, Any, Any, list[Any]]:
    """(client, job, launcher process, every process of the job) for a 50-epoch job once it runs."""
    client = emulator.client()
    trainer: Any = emulator.core.trainer
    hp = {"n_epochs": 50, "batch_size": 2, "learning_rate_multiplier": 1.0}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, toy_examples(1)),
        method={"type": "supervised", "supervised": {"hyperparameters": hp}},
    )
    job = wait_for(client, job.id, until=lambda j: j.status in ("running", "failed"), timeout=90)
    assert job.status == "running", job.error
    proc = trainer.procs[job.id]
    poll_until(lambda: len(family(proc)) >= 3, "the launcher and both ranks are up")
    return client, job, proc, family(proc)  # the launcher, torchrun's ranks (each in a session of its own)


def test_pause_and_cancel_reach_every_process_and_leave_none(two_process_emulator: Emulator) -> None:
    client, job, proc, procs = _long_running_job(two_process_emulator)
    trainer: Any = two_process_emulator.core.trainer

    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    poll_until(lambda: set(_states(procs)) == {"stopped"}, "every process of the job is stopped")
    assert client.fine_tuning.jobs.resume(job.id).status == "running"
    poll_until(lambda: "stopped" not in _states(procs), "every process of the job runs again")

    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    poll_until(lambda: not _states(procs), "no process of the job is left", timeout=30)
    poll_until(lambda: job.id not in trainer.procs, "the server let go of the job's process")
    assert proc.poll() is not None
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"


def test_out_of_memory_on_rank_1_fails_the_job_and_leaves_no_process(
    two_process_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.local.test_trl_failures import fault_site

    fault_site(tmp_path / "oom-site", monkeypatch)
    monkeypatch.setenv("OOM_TEST_RANK", "1")  # the second process runs out at its third step; rank 0 does not
    client = two_process_emulator.client()
    trainer: Any = two_process_emulator.core.trainer
    hp = {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 1.0}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, toy_examples(1)),
        method={"type": "supervised", "supervised": {"hyperparameters": hp}},
    )
    job = wait_for(client, job.id, until=lambda j: j.status in ("running", "failed"), timeout=90)
    procs = family(trainer.procs[job.id]) if job.id in trainer.procs else []
    job = wait_for(client, job.id, timeout=90)
    assert job.status == "failed" and job.error.code == "out_of_memory", job.error
    assert job.error.message.startswith(
        "The job failed: The GPU ran out of memory at training step 3 of 5 fine-tuning "
        f"{trainer.model} (batch_size 4, 2 examples a step on each of 2 processes, max length 1024 tokens, LoRA)"
    ), job.error.message
    errors = [
        e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.level == "error"
    ]
    assert errors == [job.error.message]
    poll_until(lambda: not _states(procs), "no process of the job is left", timeout=30)
    poll_until(lambda: job.id not in trainer.procs, "the server let go of the job's process")
    jdir = Path(trainer.output_dir) / job.id
    records = [json.loads(line) for line in (jdir / "progress.jsonl").read_text().splitlines()]
    assert [r.get("rank") for r in records if r["type"] == "error"][:1] == [1]  # rank 1 said why


def test_kill_9_of_the_launcher_fails_the_job_and_takes_the_ranks_with_it(
    two_process_emulator: Emulator,
) -> None:
    import signal

    client, job, proc, procs = _long_running_job(two_process_emulator)
    proc.send_signal(signal.SIGKILL)  # no cleanup runs in the launcher: the ranks must go on their own
    job = wait_for(client, job.id, timeout=30)
    assert job.status == "failed" and job.error.code == "trainer_crashed", job.error
    assert "killed by signal 9" in job.error.message and job.id in job.error.message
    poll_until(lambda: not _states(procs), "no rank outlives the launcher", timeout=20)
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"
