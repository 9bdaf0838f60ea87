"""Crash and resume: a session process is killed with SIGKILL mid-wait and mid-evaluation, then resumed.

The emulator runs in the test process, so it outlives the killed session process; its journal shows
whether the resumed session uploaded again, created a second job or re-asked cached answers.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.processes import kill9, read_json, wait_until

BASE = "gpt-4o-mini-2024-07-18"
N_RECORDS, N_TRAIN = 60, 20
N_TEST = N_RECORDS - N_TRAIN
SPEC = JobSpec(model=BASE, n_epochs=2)

WORKER = f"""
import sys
from openai import OpenAI
from finetune_wb import FineTuneSession, JobSpec
from finetune_wb.data.demo_dataset import demo_template, load_demo_records

base_url, state_path = sys.argv[1], sys.argv[2]
session = FineTuneSession(
    project="kill-test", client=OpenAI(base_url=base_url, api_key="sk-test"), state_path=state_path,
    wandb_mode="offline",
)
session.prepare(load_demo_records()[:{N_RECORDS}], template=demo_template(), n_train={N_TRAIN}, seed=1)
session.fine_tune(JobSpec(model="{BASE}", n_epochs=2))
print("created", session.job_id, flush=True)
session.wait()
print("waited", flush=True)
session.evaluate(baselines=["{BASE}"], concurrency=2)
print("evaluated", flush=True)
"""


def _posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status < 400)


def _start_worker(tmp_path: Path, emu: Any) -> tuple[subprocess.Popen[str], Path]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, str(script), emu.base_url, str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, state


def test_kill_mid_wait_then_resume_same_job(finetune_emulator: Any, tmp_path: Path) -> None:
    finetune_emulator.pace = 0.6  # the job runs for a few seconds: time to kill the waiting process
    client = finetune_emulator.client()
    proc, state_path = _start_worker(tmp_path, finetune_emulator)

    def job_running() -> bool:
        job_id = read_json(state_path).get("job_id")
        return bool(job_id) and client.fine_tuning.jobs.retrieve(job_id).status in (
            "validating_files",
            "queued",
            "running",
        )

    wait_until(job_running, proc, "the job to be created and running")
    time.sleep(0.3)  # let the worker get into wait_for_job's polling loop
    job_id = read_json(state_path)["job_id"]
    assert client.fine_tuning.jobs.retrieve(job_id).status not in ("succeeded", "failed", "cancelled")
    kill9(proc)

    session = FineTuneSession.resume(state_path, client=client, wandb_mode="offline")
    session.prepare(load_demo_records()[:N_RECORDS], template=demo_template(), n_train=N_TRAIN, seed=1)
    assert session.fine_tune(SPEC).id == job_id
    job = session.wait()
    assert job.id == job_id and job.status == "succeeded"
    assert session.state.tracked and session.state.model_artifact is not None
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    report = session.evaluate(baselines=[BASE])
    assert report.ok and report.metric(job.fine_tuned_model, "exact_match") > report.metric(
        BASE, "exact_match"
    )


def test_kill_mid_evaluation_then_resume_asks_only_what_is_missing(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    finetune_emulator.inject_latency(0.1, path="/v1/chat/completions", method="POST")
    client = finetune_emulator.client()
    proc, state_path = _start_worker(tmp_path, finetune_emulator)

    def cached_answers() -> int:
        cache = read_json(state_path).get("eval_cache_path")
        if not cache or not Path(cache).exists():
            return 0
        try:
            with sqlite3.connect(cache, timeout=1.0) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        except sqlite3.Error:
            return 0

    wait_until(lambda: cached_answers() >= 10, proc, "the evaluation to cache some answers")
    kill9(proc)
    time.sleep(0.5)  # requests the dead process left in flight finish (and are journalled) server-side
    total = 2 * N_TEST
    chats_before = _posts(finetune_emulator, "/v1/chat/completions")
    cached = cached_answers()
    assert 10 <= cached < total

    session = FineTuneSession.resume(state_path, client=client, wandb_mode="offline")
    job_id = session.state.job_id
    assert session.state.job_status == "succeeded" and session.state.fine_tuned_model
    report = session.evaluate(baselines=[BASE], concurrency=8)
    asked = _posts(finetune_emulator, "/v1/chat/completions") - chats_before
    assert report.ok
    assert sum(m.n_cached for m in report.models) == cached
    assert asked == total - cached
    assert session.state.job_id == job_id
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1


def test_a_state_file_written_by_the_previous_version_still_resumes(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    """A state file as ``finetune_wb/session_state.py`` (state version 1, before the session package) wrote it
    after ``fine_tune``: resuming it uploads nothing, creates no job, waits for that job, keeps the format."""
    from finetune_wb._paths import sha256_file
    from finetune_wb.data.build import build_examples, split_examples
    from finetune_wb.data.jsonl import write_jsonl

    finetune_emulator.pace = 0.01
    client = finetune_emulator.client()
    records = load_demo_records()[:N_RECORDS]
    train, test = split_examples(build_examples(records, template=demo_template()), n_train=N_TRAIN, seed=1)
    data_dir = tmp_path / "old-data"
    train_path, test_path = (
        write_jsonl(train, data_dir / "train.jsonl"),
        write_jsonl(test, data_dir / "test.jsonl"),
    )
    with train_path.open("rb") as fh:
        file = client.files.create(file=fh, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=file.id, hyperparameters={"n_epochs": 2})
    old = {
        "version": 1,
        "session_id": "5e55104f0a1d",
        "project": "old-project",
        "entity": None,
        "created_at": 1764000000.0,
        "updated_at": 1764000060.5,
        "base_url": finetune_emulator.base_url,
        "template": demo_template().model_dump(mode="json"),
        "split": {"n_train": N_TRAIN, "train_fraction": None, "seed": 1, "stratify": True},
        "train_path": str(train_path),
        "test_path": str(test_path),
        "train_digest": sha256_file(train_path),
        "test_digest": sha256_file(test_path),
        "n_train": N_TRAIN,
        "n_test": N_TEST,
        "validation": {
            "ok": True,
            "model": BASE,
            "digest": sha256_file(train_path),
            "n_examples": N_TRAIN,
            "n_errors": 0,
            "n_warnings": 0,
            "n_epochs": 2,
            "billed_tokens": 4000,
            "total_tokens": 2000,
            "estimated_cost_usd": 0.012,
        },
        "spec": SPEC.model_dump(mode="json"),
        "training_file_id": file.id,
        "train_artifact": None,
        "test_artifact": None,
        "job_request_id": "5e55104f0a1d-0c0ffee0",
        "job_id": job.id,
        "job_status": "validating_files",
        "fine_tuned_model": None,
        "trained_tokens": None,
        "model_artifact": None,
        "tracked": False,
        "eval_cache_path": None,
        "eval_models": [],
        "eval_summary": None,
        "wandb_runs": {},
    }
    state_path = tmp_path / "old.json"
    state_path.write_text(json.dumps(old, indent=2) + "\n", encoding="utf-8")

    session = FineTuneSession.resume(state_path, client=client, wandb_mode="disabled", poll_interval=0.05)
    assert (session.project, session.state.session_id, session.job_id) == (
        "old-project",
        "5e55104f0a1d",
        job.id,
    )
    session.prepare(records, template=demo_template(), n_train=N_TRAIN, seed=1)  # the same data: accepted
    assert session.fine_tune(SPEC).id == job.id
    finished = session.wait()
    assert finished.status == "succeeded" and session.fine_tuned_model == finished.fine_tuned_model
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    saved = json.loads(state_path.read_text(encoding="utf-8"))
    assert set(old) <= set(saved)  # the same format written back (later versions only add fields)
    assert saved["job_status"] == "succeeded" and saved["created_at"] == old["created_at"]
    assert {k: saved[k] for k in ("train_digest", "test_digest", "training_file_id", "job_request_id")} == {
        k: old[k] for k in ("train_digest", "test_digest", "training_file_id", "job_request_id")
    }
