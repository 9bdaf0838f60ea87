"""A server that is down: every command gives up alike, within a few seconds, with the same message.

The conftest points OPENAI_BASE_URL at a closed local port (127.0.0.1:9). Before, ``jobs``, ``status``,
``upload`` and ``sync`` retried a refused connection for 10-13 s while ``eval`` gave up after ~3 s; the bound
here (8 s a command) is loose on purpose: it separates the two without depending on the machine's speed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from finetune_wb._retry import RetryPolicy, note_answered
from finetune_wb.cli import main

BOUND_S = 8.0
SHAPE = "could not reach http://127.0.0.1:9/v1"
ADVICE = "check OPENAI_BASE_URL (or the client's base_url), that the server is running, and the network"


def _data(tmp_path: Path) -> Path:
    line = {
        "messages": [
            {"role": "user", "content": "Is it confidential?"},
            {"role": "assistant", "content": "Yes"},
        ]
    }
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for _ in range(12)), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs"],
        ["status", "ftjob-abc123"],
        ["upload", "{data}"],
        ["sync", "--id", "ftjob-abc123"],
        ["sync"],
        ["eval", "--data", "{data}", "--model", "gpt-4o-mini-2024-07-18", "--no-cache", "--no-progress"],
    ],
    ids=lambda argv: argv[0] if argv[0] != "sync" or len(argv) == 1 else "sync-id",
)
def test_each_command_gives_up_on_a_down_server_alike(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(_data(tmp_path))
    argv = [a.replace("{data}", data) for a in argv]
    started = time.monotonic()
    code = main(argv)
    took = time.monotonic() - started
    captured = capsys.readouterr()
    said = captured.err + captured.out
    assert code == 1, said
    assert took < BOUND_S, f"{argv[0]} took {took:.1f} s to give up on a closed port"
    assert SHAPE in said and ADVICE in said, said
    assert "Traceback" not in said


def test_a_server_that_answered_before_gets_the_full_policy() -> None:
    """Only a server that never answered is given up on early: a blip to one that did is retried fully."""
    import httpx
    import openai

    url = "http://127.0.0.1:9/v1/fine_tuning/jobs"
    attempts: list[int] = []

    def fails() -> None:
        attempts.append(1)
        raise openai.APIConnectionError(request=httpx.Request("GET", url))

    policy = RetryPolicy(max_attempts=6, sleep=lambda _s: None)
    with pytest.raises(openai.APIConnectionError):
        policy.call(fails)
    assert len(attempts) == 3  # never answered in this process: a few tries, then give up

    attempts.clear()
    blip = "http://127.0.0.1:19/v1/files"

    def blips() -> None:
        attempts.append(1)
        raise openai.APIConnectionError(request=httpx.Request("GET", blip))

    note_answered("http://127.0.0.1:19/v1")
    with pytest.raises(openai.APIConnectionError):
        policy.call(blips)
    assert len(attempts) == 6  # it answered before: the whole policy
