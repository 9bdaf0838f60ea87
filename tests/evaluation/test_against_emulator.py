"""The evaluation engine against the real local emulator: latency, injected 429/500, kill -9 and resume."""

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

from finetune_wb._retry import RetryPolicy
from finetune_wb.evaluation import ModelTarget, evaluate
from finetune_wb.schema import ChatExample

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"
FAST_RETRY = RetryPolicy(max_attempts=6, initial_wait=0.001, max_wait=0.01)


def examples(n: int) -> list[ChatExample]:
    return [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "system", "content": "Answer Yes or No."},
                    {"role": "user", "content": f"Clause number {i}: the recipient keeps it secret."},
                    {"role": "assistant", "content": "Yes" if i % 2 else "No"},
                ]
            }
        )
        for i in range(n)
    ]


def write_examples(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(ex.to_openai()) + "\n" for ex in examples(n)))
    return path


def chat_journal(emu: Any) -> list[Any]:
    return [e for e in emu.journal if e.path == CHAT and e.method == "POST"]


def test_latency_and_injected_429_500_are_absorbed(finetune_emulator: Any, tmp_path: Path) -> None:
    emu = finetune_emulator
    emu.inject_latency(0.02, path=CHAT)
    emu.inject_fault(path=CHAT, method="POST", status=429, count=5, retry_after_ms=10)
    emu.inject_fault(path=CHAT, method="POST", status=500, count=3)
    report = evaluate(
        examples(20),
        models=[BASE, "gpt-4.1-mini-2025-04-14"],
        client=emu.client(),
        cache=tmp_path / "c.sqlite3",
        retry=FAST_RETRY,
        progress=False,
    )
    assert report.ok
    statuses = [e.status for e in chat_journal(emu)]
    assert statuses.count(429) == 5 and statuses.count(500) == 3 and statuses.count(200) == 40
    assert sum(m.n_rate_limited for m in report.models) == 5
    assert sum(m.n_retries for m in report.models) == 8
    assert sum(m.n_requests for m in report.models) == 48
    assert all(m.prompt_tokens > 0 and m.completion_tokens > 0 for m in report.models)

    again = evaluate(
        examples(20),
        models=[BASE, "gpt-4.1-mini-2025-04-14"],
        client=emu.client(),
        cache=tmp_path / "c.sqlite3",
        progress=False,
    )
    assert len(chat_journal(emu)) == 48  # the re-run asked nothing
    assert [m.prompt_tokens for m in again.models] == [m.prompt_tokens for m in report.models]
    assert [m.estimated_cost_usd for m in again.models] == [m.estimated_cost_usd for m in report.models]


def test_server_rate_limit_with_client_rpm_loses_nothing(finetune_emulator: Any, tmp_path: Path) -> None:
    emu = finetune_emulator
    emu.rate_limit(rpm=600, path=CHAT)  # 10 a second
    start = time.monotonic()
    report = evaluate(
        examples(8), models=BASE, client=emu.client(), rpm=600, cache=None, progress=False, retry=FAST_RETRY
    )
    elapsed = time.monotonic() - start
    assert report.ok
    assert elapsed >= 0.65  # 8 requests paced at 0.1 s
    assert [e.status for e in chat_journal(emu)] == [200] * 8


def test_each_model_its_own_client(finetune_emulator: Any, tmp_path: Path) -> None:
    report = evaluate(
        examples(4),
        models=[
            ModelTarget(BASE, client=finetune_emulator.client(), label="baseline"),
            ModelTarget(BASE, client=finetune_emulator.async_client(), label="again"),
        ],
        cache=tmp_path / "c.sqlite3",
        progress=False,
    )
    assert [m.label for m in report.models] == ["baseline", "again"]
    assert report.comparisons[0].same_model  # same name, same server: warned
    assert len(chat_journal(finetune_emulator)) == 4  # and the second one came from the cache


_CHILD = """
import sys
import openai
from finetune_wb.evaluation import evaluate

base_url, data, cache = sys.argv[1:4]
evaluate(data, models="{model}", client=openai.OpenAI(base_url=base_url, api_key="sk-test"),
         cache=cache, concurrency=2, progress=False)
print("finished")
"""


def _cached_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_half_way_then_resume_asks_only_for_the_missing_rows(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    emu = finetune_emulator
    n = 40
    emu.inject_latency(0.05, path=CHAT)
    data = write_examples(tmp_path / "test.jsonl", n)
    db = tmp_path / "cache.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(model=BASE), emu.base_url, str(data), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _cached_rows(db) < n // 4:
            assert child.poll() is None, f"the child ended early: {child.communicate()}"
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    time.sleep(0.1)  # let requests that were in flight reach the journal
    survived = _cached_rows(db)
    asked_before = len(chat_journal(emu))
    assert n // 4 <= survived < n
    assert asked_before - survived <= 2  # only the in-flight requests were lost

    report = evaluate(data, models=BASE, client=emu.client(), cache=db, progress=False)
    asked_now = len(chat_journal(emu)) - asked_before
    assert asked_now == n - survived
    assert report.ok
    assert report.models[0].n_cached == survived
    assert report.models[0].n_requests == n - survived
    assert _cached_rows(db) == n
    # tokens (and so the cost) count every row, cached or not, exactly as an uninterrupted run would
    fresh = evaluate(data, models=BASE, client=emu.client(), cache=None, progress=False)
    assert report.models[0].prompt_tokens == fresh.models[0].prompt_tokens > 0
    assert report.models[0].completion_tokens == fresh.models[0].completion_tokens > 0
    assert report.models[0].estimated_cost_usd == fresh.models[0].estimated_cost_usd
