"""Two `finetune-wb sync` processes at once, and a damaged local sync record: one W&B run per job, always.

The processes are real (``python -m finetune_wb sync``) against the emulator; W&B is offline, so each run is
an ``offline-run-*`` directory under ``$WANDB_DIR/wandb`` that can be counted.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from finetune_wb._paths import state_dir
from finetune_wb.tracking import synced
from finetune_wb.tracking.sync import sync_job
from finetune_wb.tracking.synced import REBUILD_KEY, synced_record
from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples

REPO = Path(__file__).resolve().parents[2]
PROJECT = "sync-concurrency"
BASE = "gpt-4o-mini-2024-07-18"


def _finished_jobs(emu: Any, tmp_path: Path, n: int) -> list[str]:
    client = emu.client()
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(yes_no_examples(12)))
    with path.open("rb") as fh:
        file = client.files.create(file=fh, purpose="fine-tune")
    jobs = [
        client.fine_tuning.jobs.create(model=BASE, training_file=file.id, hyperparameters={"n_epochs": 1})
        for _ in range(n)
    ]
    return [wait_job(client, job.id).id for job in jobs]


def _offline_runs() -> list[Path]:
    return sorted((Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*"))


def _record() -> Path:
    return state_dir() / "tracking" / "synced_jobs.json"


def test_two_sync_processes_write_one_run_per_job(finetune_emulator: Any, tmp_path: Path) -> None:
    job_ids = _finished_jobs(finetune_emulator, tmp_path, 2)
    finetune_emulator.inject_latency(0.3, path="/v1/fine_tuning/jobs/*/events")  # a sync that takes a while
    env = {
        **os.environ,
        "OPENAI_BASE_URL": finetune_emulator.base_url,
        "OPENAI_API_KEY": "sk-test",
        "WANDB_PROJECT": PROJECT,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    argv = [sys.executable, "-m", "finetune_wb", "sync", "--json"]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outcomes: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        for result in json.loads(out)["results"]:
            outcomes[result["job_id"]].append(result["outcome"])
    assert len(_offline_runs()) == len(job_ids)  # not two runs per job
    assert {job_id: sorted(o) for job_id, o in outcomes.items()} == {
        job_id: ["already_synced", "synced"] for job_id in job_ids
    }
    assert set(synced_record(project=PROJECT)) == set(job_ids)


def test_a_truncated_record_is_restored_from_its_backup(
    finetune_emulator: Any, tmp_path: Path, no_online_wandb: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    [job_id] = _finished_jobs(finetune_emulator, tmp_path, 1)
    client = finetune_emulator.client()
    assert sync_job(job_id, project=PROJECT, client=client).outcome == "synced"
    record = _record()
    text = record.read_text()
    record.write_text(text[: len(text) // 2])  # a truncated file
    with caplog.at_level(logging.WARNING, logger="finetune_wb.tracking"):
        again = sync_job(job_id, project=PROJECT, client=client)
    assert again.outcome == "already_synced"
    assert len(_offline_runs()) == 1  # no duplicate run
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert str(record) in warning and str(record) + ".bak" in warning
    assert job_id in json.loads(record.read_text())[f"/{PROJECT}"]  # rewritten whole from the backup
    assert no_online_wandb == []


def test_a_lost_record_offline_never_asks_wandb_and_is_marked_for_a_rebuild(
    finetune_emulator: Any, tmp_path: Path, no_online_wandb: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    [job_id] = _finished_jobs(finetune_emulator, tmp_path, 1)
    client = finetune_emulator.client()
    assert sync_job(job_id, project=PROJECT, client=client).outcome == "synced"
    record = _record()
    record.write_text('{"/sync-conc')
    Path(str(record) + ".bak").write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING, logger="finetune_wb.tracking"):
        assert synced_record(project=PROJECT) == {}
    assert no_online_wandb == []  # offline: W&B is never asked
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert str(record) in warning and str(record) + ".bak" in warning
    assert Path(str(record) + ".corrupt").read_text() == '{"/sync-conc'  # the damaged file is kept
    assert json.loads(record.read_text())[REBUILD_KEY]["rebuilt"] == []


class FakeRun:
    def __init__(self, run_id: str, job_id: str, status: str) -> None:
        self.id, self.name = run_id, f"renamed-{run_id}"
        self.config = {"job_id": job_id}
        self.summary = {"status": status}


class FakeApi:
    calls: ClassVar[list[tuple[str, Any]]] = []

    default_entity = "me"

    def runs(self, path: str, filters: Any = None) -> list[FakeRun]:
        FakeApi.calls.append((path, filters))
        return [
            FakeRun("run-a", "ftjob-aaa", "succeeded"),
            FakeRun("run-b", "ftjob-bbb", "running"),  # not finished: not synced
        ]


def test_a_lost_record_is_rebuilt_from_wandb_once_online(monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    record = _record()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text('{"/proj": {"ftjob-aaa"')  # truncated, and no backup
    FakeApi.calls = []
    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(synced, "is_offline", lambda: False)
    known = synced_record(project="proj")
    assert set(known) == {"ftjob-aaa"} and known["ftjob-aaa"]["run_id"] == "run-a"
    assert FakeApi.calls == [("me/proj", {"jobType": "fine-tune"})]
    assert synced.is_synced("ftjob-aaa", project="proj")
    assert len(FakeApi.calls) == 1  # rebuilt once; afterwards the record answers
    assert json.loads(record.read_text())[REBUILD_KEY]["rebuilt"] == ["/proj"]
