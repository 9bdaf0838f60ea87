"""Token counting in a worker process (validation/parallel_tokens.py): same report as a serial run."""

from __future__ import annotations

import json
import os
import random
import select
import signal
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.validation import parallel_tokens
from finetune_wb.validation.accumulate import IssueCollector
from finetune_wb.validation.reader import UNPARSED, iter_lines
from finetune_wb.validation.tokens import TokenCounter
from finetune_wb.validation.validate import validate_file

WORDS = [
    "agreement",
    "party",
    "shall",
    "notice",
    "clause",
    "refund",
    "invoice",
    "ticket",
    "battery",
    "screen",
    "délai",
    "契約",
    "🙂",
]


def _example(rng: random.Random, i: int) -> dict[str, Any]:
    user = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
    ex: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "You answer Yes or No."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": rng.choice(["Yes", "No", "No. " + user[:40]])},
        ]
    }
    kind = i % 17
    if kind == 3:
        ex["messages"][1]["name"] = "alice"  # not plain: the general path, +1 token for the name
    elif kind == 5:
        ex["messages"][2]["weight"] = 0
    elif kind == 7:
        ex["messages"][1]["content"] = [{"type": "text", "text": user}]
    elif kind == 11:
        ex["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    elif kind == 13:
        del ex["messages"][2]  # an error: no assistant message (still counted)
    return ex


def crafted_file(path: Path, n: int = 4000, seed: int = 3) -> Path:
    """Plain and non-plain chat lines plus blank lines, broken JSON, bad UTF-8, CRLF and a lone surrogate."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(n):
            if i % 401 == 17:
                f.write(b"\n")  # blank line
            elif i % 503 == 19:
                f.write(b'{"messages": [\n')  # invalid JSON
            elif i % 607 == 23:
                f.write(b'{"messages": "\xff\xfe"}\n')  # invalid UTF-8
            elif i % 709 == 29:
                f.write(b"[1, 2, 3]\n")  # not an object
            elif i % 811 == 31:
                f.write(b'{"messages": [{"role": "user", "content": "x\\ud800"}, ')
                f.write(b'{"role": "assistant", "content": "y"}]}\r\n')  # lone surrogate, CRLF
            else:
                f.write(json.dumps(_example(rng, i), ensure_ascii=i % 2 == 0).encode() + b"\n")
    return path


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    return crafted_file(tmp_path / "train.jsonl")


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[parallel_tokens.Precounter]:
    """Record the workers started; each is given a head start (its first result is waited for), so that a
    spawned worker's start-up does not leave it nothing to do on a small test file."""
    started: list[parallel_tokens.Precounter] = []
    real = parallel_tokens.start

    def spy(path: Path, counter: TokenCounter, **kw: Any) -> parallel_tokens.Precounter | None:
        pc = real(path, counter, **kw)
        if pc is not None:
            started.append(pc)
            assert select.select([pc._in], [], [], 60)[0], "the worker sent nothing within 60 s"
        return pc

    monkeypatch.setattr(parallel_tokens, "start", spy)
    return started


def _serial(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(parallel_tokens.ENV, "0")
    report = validate_file(path).model_dump(mode="json")
    monkeypatch.delenv(parallel_tokens.ENV)
    return report


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "spawned-process"])
def test_parallel_report_is_identical_to_serial(
    big_file: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    serial = _serial(big_file, monkeypatch)
    monkeypatch.setattr(parallel_tokens, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel_tokens, "_fork_is_safe", lambda: fork)
    monkeypatch.setattr(parallel_tokens, "chunk_size", lambda size: 64 << 10)
    started = _spy(monkeypatch)
    parallel = validate_file(big_file).model_dump(mode="json")
    assert len(started) == 1 and started[0].n_from_worker > 0  # the worker really counted lines
    assert parallel == serial
    assert serial["tokens"]["total"] > 100_000 and serial["n_errors"] > 0


def test_worker_counts_equal_the_counter_line_by_line(big_file: Path) -> None:
    counter = TokenCounter("o200k_base")
    expected: dict[int, tuple[int, int, int]] = {}
    for line, obj in iter_lines(big_file, IssueCollector(10), {}):
        if obj is not UNPARSED and type(obj) is dict:
            expected[line] = counter.example_tokens(obj)
    chunks = parallel_tokens.chunk_table(big_file, 50_000)
    assert len(chunks) > 10
    assert chunks[0][0] == 0 and chunks[-1][1] == big_file.stat().st_size
    data = big_file.read_bytes()
    got: dict[int, tuple[int, int, int]] = {}
    for start, end, first in chunks:
        assert start == 0 or data[start - 1 : start] == b"\n"  # cut at line ends
        counts = parallel_tokens.count_lines(data[start:end], counter)
        for k in range(len(counts) // 3):
            if counts[3 * k] != -1:
                got[first + k] = (counts[3 * k], counts[3 * k + 1], counts[3 * k + 2])
    assert {line: c for line, c in got.items() if line in expected} == {
        line: c for line, c in expected.items() if line in got
    }
    # the worker may count a line the reader rejects (a lone surrogate is an error on its line): the validator
    # never uses those counts; and only the lone-surrogate/CRLF oddities may be left to the validator
    rejected = set(got) - set(expected)
    assert all(b"\\ud800" in data.splitlines()[line - 1] for line in rejected)
    assert len(set(got) & set(expected)) >= len(expected) - 2


def test_threshold_and_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = crafted_file(tmp_path / "small.jsonl", n=300)
    counter = TokenCounter("o200k_base")
    monkeypatch.delenv(parallel_tokens.ENV, raising=False)
    assert small.stat().st_size < parallel_tokens.MIN_BYTES
    assert parallel_tokens.start(small, counter) is None  # below the threshold: serial
    monkeypatch.setattr(parallel_tokens, "MIN_BYTES", small.stat().st_size)
    monkeypatch.setattr(parallel_tokens, "chunk_size", lambda size: 16 << 10)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    with parallel_tokens.start(small, counter) as pc:  # type: ignore[union-attr]
        assert pc.started
    monkeypatch.setenv(parallel_tokens.ENV, "0")
    assert parallel_tokens.start(small, counter) is None
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.delenv(parallel_tokens.ENV)
    assert parallel_tokens.start(small, counter) is None  # one CPU: no worker
    monkeypatch.setenv(parallel_tokens.ENV, "1")
    pc = parallel_tokens.start(small, counter)
    assert pc is not None
    pc.close()


def test_single_chunk_file_gets_no_worker(tmp_path: Path) -> None:
    path = crafted_file(tmp_path / "one.jsonl", n=20)
    assert parallel_tokens.start(path, TokenCounter("o200k_base"), force=True) is None


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "spawned-process"])
def test_killed_worker_falls_back_to_counting_here(
    big_file: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    """kill -9 of the worker before the validator starts: every count still comes out right."""
    serial = _serial(big_file, monkeypatch)
    monkeypatch.setattr(parallel_tokens, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel_tokens, "_fork_is_safe", lambda: fork)
    monkeypatch.setattr(parallel_tokens, "chunk_size", lambda size: 64 << 10)
    real = parallel_tokens.start

    def start_and_kill(path: Path, counter: TokenCounter, **kw: Any) -> parallel_tokens.Precounter | None:
        pc = real(path, counter, **kw)
        assert pc is not None
        pid = pc._pid if pc._pid is not None else pc._proc.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        return pc

    monkeypatch.setattr(parallel_tokens, "start", start_and_kill)
    assert validate_file(big_file).model_dump(mode="json") == serial


def test_results_held_stay_few(big_file: Path) -> None:
    """The validator consumes the worker's counts in file order: only a few chunks are held at a time."""
    counter = TokenCounter("o200k_base")
    held = 0
    with parallel_tokens.Precounter(big_file, counter.encoding.name, chunk_bytes=32 << 10) as pc:
        n_chunks = len(pc._table)
        for line, obj in iter_lines(big_file, IssueCollector(10), {}):
            if obj is not UNPARSED:
                pc(line)
            held = max(held, len(pc._results))
    assert n_chunks > 20
    assert held <= n_chunks // 2
