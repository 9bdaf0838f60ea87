"""kill -9 of a batch-mode evaluation between creating its batches and collecting them, then a re-run."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.evaluation.batch.conftest import posts, run
from tests.fakes.processes import kill9, wait_until

REPO = Path(__file__).resolve().parents[3]

WORKER = textwrap.dedent(
    """
    import sys
    from finetune_wb.evaluation import BatchOptions, evaluate
    from tests.evaluation.batch.conftest import BASE, OTHER, examples

    import openai
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test")
    evaluate(examples(10), models=[BASE, OTHER], client=client, cache=sys.argv[2], progress=False,
             mode="batch", batch=BatchOptions(poll_interval=0.02, max_poll_interval=0.05))
    """
)


def recorded_batches(cache: Path) -> int:
    try:
        with sqlite3.connect(cache, timeout=1) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM batch_shards WHERE batch_id IS NOT NULL").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def test_kill9_between_create_and_collect_then_rerun_pays_nothing_twice(
    manual_emu: Any, tmp_path: Path
) -> None:
    emu, cache = manual_emu, tmp_path / "c.sqlite3"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), emu.base_url, str(cache)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: recorded_batches(cache) == 2, proc, "both batches recorded", timeout=60)
        # the worker is now polling batches that cannot move (the clock is the test's)
        wait_until(
            lambda: any(e.method == "GET" and e.path.startswith("/v1/batches/") for e in emu.journal),
            proc,
            "the worker polling",
            timeout=30,
        )
        kill9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert posts(emu, "/v1/batches") == 2 and emu.batch_lines_answered == 0
    emu.advance(10)
    report = run(emu, cache, n=10)
    assert report.ok
    assert posts(emu, "/v1/batches") == 2  # no second batch for rows already in one
    assert emu.batch_lines_answered == 20  # every request answered (paid) once
    assert posts(emu, "/v1/chat/completions") == 0
    assert {b.status for b in report.batches} == {"completed"} and len(report.batches) == 2


def test_two_processes_on_one_cache_create_one_batch_per_model_and_pay_once(
    manual_emu: Any, tmp_path: Path
) -> None:
    """Two real processes evaluate the same rows in batch mode on one cache at the same time."""
    emu, cache = manual_emu, tmp_path / "c.sqlite3"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), emu.base_url, str(cache)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            wait_until(lambda: recorded_batches(cache) == 2, proc, "both batches recorded", timeout=60)
        # both are past submission (the second found the first one's batches) and waiting on the clock
        wait_until(
            lambda: (
                sum(1 for e in emu.journal if e.method == "GET" and e.path.startswith("/v1/batches/")) >= 4
            ),
            procs[1],
            "both workers polling",
            timeout=60,
        )
        emu.advance(10)
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    assert posts(emu, "/v1/batches") == 2  # one batch per model, not one per process
    assert emu.batch_lines_answered == 20  # every request answered (paid) once
    assert posts(emu, "/v1/chat/completions") == 0
