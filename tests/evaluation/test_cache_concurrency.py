"""Several processes on one answer cache: each request is asked once, claims of dead processes are taken over.

The processes here are real (``python -m finetune_wb eval`` and small holders that claim rows through
:class:`AnswerCache`); a holder that "crashes" is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.evaluation import evaluate
from finetune_wb.evaluation.cache import AnswerCache
from tests.fakes.chat import FAST_RETRY, FakeChat, make_examples

REPO = Path(__file__).resolve().parents[2]
BASE = "gpt-4o-mini-2024-07-18"
CHAT = "/v1/chat/completions"

HOLDER = """
import sys, time
from finetune_wb.evaluation.cache import AnswerCache
cache = AnswerCache(sys.argv[1])
hold = float(sys.argv[2])
for key in sys.argv[3:]:
    assert cache.claim(key, hold_s=hold) is None
print("claimed", flush=True)
time.sleep(120)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _keys_of(tmp_path: Path, examples: Any) -> list[str]:
    """The cache keys of these examples' requests (from a throw-away run)."""
    probe = tmp_path / "probe.sqlite3"
    evaluate(
        examples, models=["m"], client=FakeChat().client(), cache=probe, progress=False, retry=FAST_RETRY
    )
    with sqlite3.connect(probe) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM answers")]


def _holder(cache: Path, keys: list[str], hold_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache), str(hold_s), *keys],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "claimed"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_two_eval_processes_on_one_cache_ask_each_row_once(finetune_emulator: Any, tmp_path: Path) -> None:
    n = 8
    data = tmp_path / "test.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"Is clause {i} marked confidential?"},
                        {"role": "assistant", "content": "Yes" if i % 2 else "No"},
                    ]
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    cache = tmp_path / "shared-cache.sqlite3"
    finetune_emulator.inject_latency(1.0, path=CHAT)
    env = _env(OPENAI_BASE_URL=finetune_emulator.base_url, OPENAI_API_KEY="sk-test")
    argv = [sys.executable, "-m", "finetune_wb", "eval", "--data", str(data), "--model", BASE]
    argv += ["--cache", str(cache), "--json", "--no-progress", "--concurrency", "2"]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(json.loads(out))
    asked = [e for e in finetune_emulator.journal if e.path == CHAT and e.method == "POST"]
    assert len(asked) == n  # not 2 * n: the second process waited for the first one's answers
    first, second = outs
    assert first["metrics"] == second["metrics"]
    assert [(r["example_index"], r["output"]) for r in first["rows"]] == [
        (r["example_index"], r["output"]) for r in second["rows"]
    ]
    with sqlite3.connect(cache) as conn:  # every claim was dropped when its answer was stored
        assert conn.execute("SELECT COUNT(*) FROM inflight").fetchone()[0] == 0


def test_a_request_another_live_process_asks_is_waited_for_with_a_bound(tmp_path: Path) -> None:
    examples = make_examples(3)
    keys = _keys_of(tmp_path, examples)
    cache = tmp_path / "cache.sqlite3"
    holder = _holder(cache, keys, hold_s=3600)
    try:
        fake = FakeChat()
        started = time.monotonic()
        report = evaluate(
            examples,
            models=["m"],
            client=fake.client().with_options(timeout=1.0),  # the bound: the request timeout
            cache=cache,
            progress=False,
            retry=FAST_RETRY,
        )
        elapsed = time.monotonic() - started
    finally:
        _stop(holder)
    assert fake.requests == []  # never paid for twice
    assert elapsed < 15
    assert report.n_unanswered == 3
    error = report.rows[0].error or ""
    assert f"pid {holder.pid}" in error and str(cache) in error and "Run again" in error


def test_the_claim_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    examples = make_examples(3)
    keys = _keys_of(tmp_path, examples)
    cache = tmp_path / "cache.sqlite3"
    holder = _holder(cache, keys, hold_s=3600)
    os.kill(holder.pid, signal.SIGKILL)  # a crash: its claims stay in the file
    holder.wait(timeout=10)
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inflight").fetchone()[0] == 3
    fake = FakeChat()
    started = time.monotonic()
    report = evaluate(
        examples, models=["m"], client=fake.client(), cache=cache, progress=False, retry=FAST_RETRY
    )
    assert time.monotonic() - started < 10  # not the default 600 s bound: a dead owner is not waited for
    assert len(fake.requests) == 3 and report.n_unanswered == 0


def test_an_old_claim_of_a_live_process_is_taken_over(tmp_path: Path) -> None:
    examples = make_examples(3)
    keys = _keys_of(tmp_path, examples)
    cache = tmp_path / "cache.sqlite3"
    holder = _holder(cache, keys, hold_s=0.0)  # alive, but its deadline has passed
    try:
        fake = FakeChat()
        report = evaluate(
            examples, models=["m"], client=fake.client(), cache=cache, progress=False, retry=FAST_RETRY
        )
    finally:
        _stop(holder)
    assert len(fake.requests) == 3 and report.n_unanswered == 0


def test_an_answer_stored_by_the_other_process_is_used_without_a_request(tmp_path: Path) -> None:
    examples = make_examples(2)
    keys = _keys_of(tmp_path, examples)
    cache = tmp_path / "cache.sqlite3"
    holder = _holder(cache, keys, hold_s=3600)
    try:
        fake = FakeChat()

        def store_later() -> None:
            from finetune_wb.evaluation.cache import CachedAnswer

            time.sleep(0.5)
            with AnswerCache(cache) as other:
                for key in keys:
                    other.put(key, base_url="x", model="m", answer=CachedAnswer(output="Yes"))

        import threading

        writer = threading.Thread(target=store_later)
        writer.start()
        report = evaluate(
            examples, models=["m"], client=fake.client(), cache=cache, progress=False, retry=FAST_RETRY
        )
        writer.join()
    finally:
        _stop(holder)
    assert fake.requests == []
    assert [r.output for r in report.rows] == ["Yes", "Yes"] and all(r.cached for r in report.rows)


@pytest.mark.parametrize("host", ["this", "a-container-that-was-restarted"])
def test_a_claim_whose_owner_is_gone_is_taken_over_even_when_its_pid_is_reused(
    tmp_path: Path, host: str
) -> None:
    """A restarted container often reuses the same pid (here: this very process's) or gets a new host name;
    the claim's owner lock, not its pid, says whether it still runs."""
    import socket

    examples = make_examples(2)
    keys = _keys_of(tmp_path, examples)
    cache = tmp_path / "cache.sqlite3"
    AnswerCache(cache).close()  # create the file and its tables
    with sqlite3.connect(cache) as conn:
        for key in keys:
            conn.execute(
                "INSERT INTO inflight VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    "owner-of-a-previous-run",
                    os.getpid(),
                    socket.gethostname() if host == "this" else host,
                    time.time(),
                    time.time() + 3600,
                ),
            )
    fake = FakeChat()
    started = time.monotonic()
    report = evaluate(
        examples, models=["m"], client=fake.client(), cache=cache, progress=False, retry=FAST_RETRY
    )
    assert time.monotonic() - started < 10
    assert len(fake.requests) == 2 and report.n_unanswered == 0


def test_two_threads_opening_a_new_cache_at_once_both_succeed(tmp_path: Path) -> None:
    """Creating a cache file (WAL switch, tables) races when two open it at the same moment: SQLite answers
    "database is locked" without waiting. Openers take turns; 60 fresh files, two openers each, no error."""
    import threading

    from finetune_wb.evaluation.cache import AnswerCache

    errors: list[BaseException] = []
    for i in range(60):
        path = tmp_path / f"c{i}.sqlite3"
        barrier = threading.Barrier(2)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=10)
                AnswerCache(path).close()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
