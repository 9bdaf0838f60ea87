"""Batch input files: the synchronous engine's body and cache key, sharding by model, count and size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_wb.errors import BatchInputError
from finetune_wb.evaluation.batch.shards import RowRequest, write_shards
from finetune_wb.evaluation.cache import cache_key
from finetune_wb.evaluation.transport import chat_body

PARAMS = {"max_tokens": 16, "temperature": 0}


def reqs(n: int, model: str = "m1", size: int = 10) -> list[RowRequest]:
    out = []
    for i in range(n):
        messages = [{"role": "user", "content": f"{i:04d} " + "x" * size}]
        out.append(RowRequest(cache_key("http://h/v1", model, messages, PARAMS), model, messages, i))
    return out


def test_lines_carry_the_sync_body_and_the_cache_key(tmp_path: Path) -> None:
    rows = reqs(3)
    [shard] = list(write_shards(rows, tmp_path, PARAMS, max_requests=10, max_bytes=10**6))
    lines = [json.loads(x) for x in shard.path.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [r.key for r in rows] == shard.keys
    assert all(x["method"] == "POST" and x["url"] == "/v1/chat/completions" for x in lines)
    assert lines[1]["body"] == chat_body("m1", rows[1].messages, PARAMS)
    assert shard.n_bytes == shard.path.stat().st_size


def test_shards_split_by_count_size_and_model(tmp_path: Path) -> None:
    rows = reqs(7) + reqs(2, model="m2")
    by_count = list(write_shards(rows, tmp_path / "a", PARAMS, max_requests=3, max_bytes=10**6))
    assert [(s.model, len(s.keys)) for s in by_count] == [("m1", 3), ("m1", 3), ("m1", 1), ("m2", 2)]
    one = len(
        next(
            iter(write_shards(rows[:1], tmp_path / "b", PARAMS, max_requests=9, max_bytes=10**6))
        ).path.read_bytes()
    )
    by_size = list(write_shards(rows[:7], tmp_path / "c", PARAMS, max_requests=100, max_bytes=2 * one + 5))
    assert [len(s.keys) for s in by_size] == [2, 2, 2, 1]
    assert all(s.n_bytes <= 2 * one + 5 for s in by_size)
    keys = [k for s in by_count for k in s.keys]
    assert keys == [r.key for r in rows]


def test_a_line_over_the_size_limit_is_refused_naming_the_row(tmp_path: Path) -> None:
    rows = [*reqs(2), RowRequest("k", "m1", [{"role": "user", "content": "y" * 5000}], 2)]
    with pytest.raises(BatchInputError, match=r"example 2 \(m1\).*over the 4096-byte limit"):
        list(write_shards(rows, tmp_path, PARAMS, max_requests=10, max_bytes=4096))
