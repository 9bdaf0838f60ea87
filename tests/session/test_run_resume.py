"""One W&B run per session step across crashes: a session killed (SIGKILL) mid-wait or mid-evaluation is
resumed into the same run id, and only one offline run directory per run id is left to ``wandb sync``.

The worker process runs a session against an emulator the test starts (``run_emulator``), offline W&B in a
directory of the test's own; it is killed while its fine-tune (or eval) run is open, then the session is
resumed in the test process with the same state file and W&B directory.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.emulator.runner import Emulator, run_emulator
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from finetune_wb.session.runs import SUPERSEDED_DIR
from tests.fakes.processes import kill9, read_json, wait_until
from tests.fakes.wandb_readback import read_run, run_dirs

BASE = "gpt-4o-mini-2024-07-18"
N_RECORDS, N_TRAIN = 60, 20
SPEC = JobSpec(model=BASE, n_epochs=2)

WORKER = f"""
import sys
from openai import OpenAI
from finetune_wb import FineTuneSession, JobSpec
from finetune_wb.data.demo_dataset import demo_template, load_demo_records

base_url, state_path, wandb_dir = sys.argv[1], sys.argv[2], sys.argv[3]
session = FineTuneSession(
    project="run-resume", client=OpenAI(base_url=base_url, api_key="sk-test", max_retries=0),
    state_path=state_path, wandb_mode="offline", wandb_dir=wandb_dir, poll_interval=0.1,
)
session.prepare(load_demo_records()[:{N_RECORDS}], template=demo_template(), n_train={N_TRAIN}, seed=1)
session.fine_tune(JobSpec(model="{BASE}", n_epochs=2))
session.wait()
print("waited", flush=True)
session.evaluate(baselines=["{BASE}"], concurrency=2)
print("evaluated", flush=True)
"""


def _start(tmp_path: Path, emu: Emulator) -> tuple[subprocess.Popen[str], Path, Path]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    state, wandb_dir = tmp_path / "state.json", tmp_path / "wb"
    wandb_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), emu.base_url, str(state), str(wandb_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, state, wandb_dir


def _run_id(run_dir: str | Path) -> str:
    return Path(run_dir).name.rsplit("-", 1)[-1]


def _one_dir_per_run_id(wandb_dir: Path) -> Counter[str]:
    ids = Counter(_run_id(d) for d in run_dirs(wandb_dir))
    assert all(n == 1 for n in ids.values()), f"run ids with several offline run directories: {ids}"
    return ids


def _resume(state_path: Path, emu: Emulator, wandb_dir: Path) -> FineTuneSession:
    session = FineTuneSession.resume(
        state_path, client=emu.client(), wandb_mode="offline", wandb_dir=wandb_dir, poll_interval=0.05
    )
    session.prepare(load_demo_records()[:N_RECORDS], template=demo_template(), n_train=N_TRAIN, seed=1)
    return session


def _ids(wandb_dir: Path) -> set[str]:
    return {_run_id(d) for d in run_dirs(wandb_dir)}


def test_kill_mid_wait_resumes_the_same_fine_tune_run(tmp_path: Path) -> None:
    with run_emulator(pace=3.0) as emu:  # the job runs for several seconds: time to kill the waiting worker
        proc, state_path, wandb_dir = _start(tmp_path, emu)
        wait_until(lambda: len(run_dirs(wandb_dir)) >= 2, proc, "the fine-tune run to start")
        time.sleep(0.5)  # the worker is in wait_for_job, logging into its run
        job_id = read_json(state_path)["job_id"]
        assert emu.client().fine_tuning.jobs.retrieve(job_id).status not in ("succeeded", "failed")
        kill9(proc)
        dataset_id = _run_id(read_json(state_path)["wandb_runs"]["dataset"])
        (crashed_id,) = _ids(wandb_dir) - {dataset_id}

        session = _resume(state_path, emu, wandb_dir)
        assert session.fine_tune(SPEC).id == job_id
        assert session.wait().status == "succeeded"

    state = session.state
    assert _run_id(state.wandb_runs["fine-tune"]) == crashed_id  # the same W&B run, continued
    ids = _one_dir_per_run_id(wandb_dir)
    assert set(ids) == {dataset_id, crashed_id}
    readback = read_run(Path(state.wandb_runs["fine-tune"]))
    assert readback.exit_code == 0 and readback.summary.get("status") == "succeeded"
    assert {_run_id(d) for d in (wandb_dir / SUPERSEDED_DIR).iterdir()} == {
        crashed_id
    }  # kept, out of the way
    assert "fine-tune" not in state.wandb_open_runs  # the step is done: a later start would be a new run


def test_kill_mid_evaluation_resumes_the_same_eval_run_and_a_cached_rerun_is_logged_only_when_asked(
    tmp_path: Path,
) -> None:
    with run_emulator(pace=0.01) as emu:
        emu.inject_latency(0.1, path="/v1/chat/completions", method="POST")
        proc, state_path, wandb_dir = _start(tmp_path, emu)

        def answers_cached() -> bool:
            cache = read_json(state_path).get("eval_cache_path")
            if not cache or not Path(cache).exists():
                return False
            try:
                with sqlite3.connect(cache, timeout=1.0) as conn:
                    return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]) >= 5
            except sqlite3.Error:
                return False

        wait_until(answers_cached, proc, "the evaluation to cache some answers")
        kill9(proc)
        runs = read_json(state_path)["wandb_runs"]
        (crashed_id,) = _ids(wandb_dir) - {_run_id(runs["dataset"]), _run_id(runs["fine-tune"])}

        session = _resume(state_path, emu, wandb_dir)
        assert session.evaluate(baselines=[BASE], concurrency=4).ok
        assert _run_id(session.state.wandb_runs["eval"]) == crashed_id
        assert read_run(Path(session.state.wandb_runs["eval"])).exit_code == 0
        assert len(_one_dir_per_run_id(wandb_dir)) == 3

        # the same evaluation again, every answer cached: nothing new to log, so no second run ...
        again = session.evaluate(baselines=[BASE], concurrency=4)
        assert again.ok and all(m.n_requests == 0 for m in again.models)
        assert _run_id(session.state.wandb_runs["eval"]) == crashed_id
        assert len(_one_dir_per_run_id(wandb_dir)) == 3
        # ... unless asked: then a finished step run again gets a run of its own
        session.evaluate(baselines=[BASE], concurrency=4, log_again=True)
        second = _run_id(session.state.wandb_runs["eval"])
        assert second != crashed_id
        ids = _one_dir_per_run_id(wandb_dir)
        assert {crashed_id, second} <= set(ids) and len(ids) == 4  # dataset, fine-tune, two evaluations
