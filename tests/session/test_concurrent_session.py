"""Two processes on one session state file: the second waits for, or adopts, what the first did.

Each test starts one emulator (in the test process, so its journal sees both workers) and two real worker
processes that wait at a start line (a file the test creates) so that they race for the same step. The
journal then shows how many files were uploaded and how many jobs were created: each one is money.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.emulator import run_emulator
from finetune_wb.errors import ConfigError
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession

BASE = "gpt-4o-mini-2024-07-18"
N_RECORDS, N_TRAIN = 60, 20
SPEC = JobSpec(model=BASE, n_epochs=2)
WORKER_TIMEOUT = 150.0

WORKER = f"""
import json, os, sys, time
from openai import OpenAI
from finetune_wb import FineTuneSession, JobSpec
from finetune_wb.data.demo_dataset import demo_template, load_demo_records

base_url, state_path, start_line, mode, rounds, ready = sys.argv[1:7]
client = OpenAI(base_url=base_url, api_key="sk-test")
records = load_demo_records()[:{N_RECORDS}]
template = demo_template()
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(start_line) and time.monotonic() < deadline:
    time.sleep(0.005)
if mode == "new":
    session = FineTuneSession(
        project="two-procs", client=client, state_path=state_path, wandb_mode="disabled", poll_interval=0.05
    )
else:
    session = FineTuneSession.resume(state_path, client=client, wandb_mode="disabled", poll_interval=0.05)
for _ in range(int(rounds)):
    session.prepare(records, template=template, n_train={N_TRAIN}, seed=1)
job = session.fine_tune(JobSpec(model="{BASE}", n_epochs=2))
if mode == "finished":
    job = session.wait(timeout=60)
print(json.dumps({{"job_id": job.id, "status": job.status, "file": session.state.training_file_id}}))
"""


def _posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status < 400)


def _race(tmp_path: Path, emu: Any, state: Path, mode: str, rounds: int = 1) -> list[dict[str, Any]]:
    """Run two workers on ``state`` from one start line; both must exit 0. Returns what each printed."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    start_line = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                emu.base_url,
                str(state),
                str(start_line),
                mode,
                str(rounds),
                str(r),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    deadline = time.monotonic() + WORKER_TIMEOUT  # both workers have imported everything: start them together
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    start_line.touch()
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError("a worker did not finish in time") from None
        assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{err[-3000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _prepared(path: Path, emu: Any) -> FineTuneSession:
    session = FineTuneSession(
        project="two-procs", client=emu.client(), state_path=path, wandb_mode="disabled"
    )
    session.prepare(load_demo_records()[:N_RECORDS], template=demo_template(), n_train=N_TRAIN, seed=1)
    return session


def test_two_new_sessions_on_one_state_file_create_one_job(tmp_path: Path) -> None:
    with run_emulator(pace=0.01) as emu:
        emu.inject_latency(0.5, path="/v1/files", method="POST")  # a slow upload: a wide window to race in
        state = tmp_path / "state.json"
        first, second = _race(tmp_path, emu, state, "new")
        assert _posts(emu, "/v1/fine_tuning/jobs") == 1
        assert _posts(emu, "/v1/files") == 1
        assert first["job_id"] == second["job_id"]
        assert json.loads(state.read_text(encoding="utf-8"))["job_id"] == first["job_id"]


def test_two_resumes_of_a_prepared_session_create_one_job(tmp_path: Path) -> None:
    with run_emulator(pace=0.01) as emu:
        emu.inject_latency(0.5, path="/v1/files", method="POST")
        state = tmp_path / "state.json"
        _prepared(state, emu)
        first, second = _race(tmp_path, emu, state, "resume")
        assert _posts(emu, "/v1/fine_tuning/jobs") == 1
        assert _posts(emu, "/v1/files") == 1
        assert first["job_id"] == second["job_id"] == json.loads(state.read_text(encoding="utf-8"))["job_id"]


def test_two_resumes_of_a_finished_session_both_succeed_with_the_same_job(tmp_path: Path) -> None:
    with run_emulator(pace=0.01) as emu:
        state = tmp_path / "state.json"
        session = _prepared(state, emu)
        session.fine_tune(SPEC)
        done = session.wait(timeout=60)
        # Each worker prepares the same data again and again while the other does too: nothing may collide.
        first, second = _race(tmp_path, emu, state, "finished", rounds=15)
        assert first["job_id"] == second["job_id"] == done.id
        assert first["status"] == second["status"] == "succeeded"
        assert _posts(emu, "/v1/fine_tuning/jobs") == 1
        assert _posts(emu, "/v1/files") == 1
        assert not list((tmp_path / "state-data").glob(".*"))  # no staged file left behind


def test_a_state_file_that_is_not_utf8_says_what_to_do(tmp_path: Path) -> None:
    state = tmp_path / "latin1.json"
    state.write_bytes('{"project": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        FineTuneSession.resume(state)
    message = str(info.value)
    assert str(state) in message and "not UTF-8" in message
    assert "pass another state_path" in message and "move this file away" in message
    with pytest.raises(ConfigError, match="pass another state_path"):
        FineTuneSession(project="caf", state_path=state)


HOLD_STATE_LOCK = """
import sys, time
from pathlib import Path
from finetune_wb.session.state import state_lock
with state_lock(Path(sys.argv[1]), step="fine_tune", timeout=5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_step_that_gives_up_waiting_names_the_other_process(tmp_path: Path) -> None:
    from finetune_wb.errors import FineTuneError, JobTimeout

    state = tmp_path / "state.json"
    session = FineTuneSession(project="busy", state_path=state, wandb_mode="disabled", lock_timeout=0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STATE_LOCK, str(state)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FineTuneError) as info:
            session.prepare(
                load_demo_records()[:N_RECORDS], template=demo_template(), n_train=N_TRAIN, seed=1
            )
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "fine_tune" in message and str(state) in message
        assert "Wait for that process to finish" in message
        session.context.lock_timeout = None
        started = time.monotonic()
        with pytest.raises(JobTimeout, match=f"pid {holder.pid}"):  # wait(timeout=T): T in all, lock included
            session.wait(timeout=0.5)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # the holder was killed: its lock went with it
    session.prepare(load_demo_records()[:N_RECORDS], template=demo_template(), n_train=N_TRAIN, seed=1)
    assert session.state.n_train == N_TRAIN


REWRITE = """
import sys
from pathlib import Path
from finetune_wb.session.state import SessionState, save_state
path, who = Path(sys.argv[1]), sys.argv[2]
for i in range(300):
    save_state(SessionState(project=who, eval_models=[who] * 200, n_train=i), path)
"""


def test_two_processes_rewriting_one_state_file_never_leave_half_a_file(tmp_path: Path) -> None:
    """Each writer has its own temporary file: a reader sees one whole version or another, never a mix."""
    from finetune_wb.session.state import load_state

    state = tmp_path / "state.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", REWRITE, str(state), who], stderr=subprocess.PIPE, text=True)
        for who in ("a", "b")
    ]
    while any(p.poll() is None for p in procs):
        if state.exists():
            loaded = load_state(state)  # raises on a half-written or mixed file
            assert set(loaded.eval_models) == {loaded.project}
    for proc in procs:
        _, err = proc.communicate(timeout=WORKER_TIMEOUT)
        assert proc.returncode == 0, err[-3000:]
    assert load_state(state).n_train == 299
    assert not [p.name for p in tmp_path.iterdir() if p.name != "state.json"]  # no temporary file left
