"""kill -9 in the middle of a tool-call evaluation: the answers already paid for, with their tool calls, are
not asked again, and the resumed report is the same as an uninterrupted one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from finetune_wb.evaluation import evaluate
from tests.evaluation.tool_data import tool_example, write_jsonl
from tests.fakes.processes import kill9, wait_until

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"

_CHILD = """
import sys
import openai
from finetune_wb.evaluation import evaluate

base_url, data, cache = sys.argv[1:4]
evaluate(data, models="{model}", evaluators=["tool_call_match"], tool_choice="required",
         client=openai.OpenAI(base_url=base_url, api_key="sk-test"), cache=cache, concurrency=2, progress=False)
print("finished")
"""


def _rows_with_calls(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM answers WHERE extra LIKE '%tool_calls%'").fetchone()[0]
            )
    except sqlite3.OperationalError:  # not created yet, or the column not added yet
        return 0


def test_kill_9_then_resume_asks_only_for_the_missing_tool_calls(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    emu = finetune_emulator
    n = 30
    emu.inject_latency(0.05, path=CHAT)
    data = write_jsonl(tmp_path / "test.jsonl", [tool_example(i, f"City{i}") for i in range(n)])
    db = tmp_path / "cache.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(model=BASE), emu.base_url, str(data), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: _rows_with_calls(db) >= n // 4, child, "a quarter of the answers cached", timeout=60
        )
        kill9(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    kept = _rows_with_calls(db)
    assert n // 4 <= kept < n
    emu.inject_latency(0.0, path=CHAT)
    kw: dict[str, Any] = {"models": BASE, "evaluators": ["tool_call_match"], "tool_choice": "required"}
    resumed = evaluate(data, client=emu.client(), cache=db, progress=False, **kw)
    # only the rows the killed process had not stored were asked (the server also logs the killed
    # process's requests in flight, as 499, so the count is the resumed run's own)
    assert resumed.models[0].n_requests == n - kept
    assert sum(1 for r in resumed.rows if r.cached) == kept
    assert all(r.tool_calls for r in resumed.rows)  # cached rows keep their calls
    fresh = evaluate(data, client=emu.client(), cache=None, progress=False, **kw)
    assert [r.tool_calls for r in resumed.rows] == [r.tool_calls for r in fresh.rows]
    assert resumed.metric_values == fresh.metric_values
