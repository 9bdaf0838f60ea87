"""``finetune-wb eval --batch`` against the emulator: --json batches, --no-wait then collect, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.cli.test_eval import BASE, OTHER, write_data

BATCHES = "/v1/batches"


def created(emu: Any) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == BATCHES and e.status == 200)


@pytest.fixture
def fast_env(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    finetune_emulator.pace = 0.002
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


@pytest.fixture
def manual_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from finetune_wb.emulator import ManualClock, run_emulator

    with run_emulator(clock=ManualClock()) as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield emu


def argv(tmp_path: Path, *extra: str, n: int = 6) -> list[str]:
    data = write_data(tmp_path / "test.jsonl", n)
    return ["eval", "--data", str(data), "--model", BASE, OTHER, "--cache", str(tmp_path / "c.db"), *extra]


def test_batch_json_is_the_sync_object_plus_batches(
    fast_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = ["--batch-poll-interval", "0.01"]
    assert main(argv(tmp_path, "--batch", "--json", "--batch-max-requests", "4", *fast)) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["batches"]) == 4 and created(fast_env) == 4
    for batch in out["batches"]:
        assert batch["id"].startswith("batch_") and batch["status"] == "completed"
        assert set(batch["request_counts"]) == {"total", "completed", "failed"}
        assert batch["cost_usd"] == pytest.approx(batch["sync_cost_usd"] / 2)
    assert sum(b["request_counts"]["total"] for b in out["batches"]) == 12
    assert out["params"]["mode"] == "batch"
    assert not any(e.path == "/v1/chat/completions" for e in fast_env.journal)
    assert main(argv(tmp_path, "--json")) == 0  # the synchronous command: the same keys, every answer cached
    sync = json.loads(capsys.readouterr().out)
    assert set(sync) == set(out) and sync["batches"] == []
    assert [r["output"] for r in sync["rows"]] == [r["output"] for r in out["rows"]]
    assert all(m["n_requests"] == 0 for m in sync["models"])


def test_no_wait_exits_0_and_the_same_command_collects(
    manual_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = argv(tmp_path, "--batch", "--no-wait", "--json")
    assert main(command) == 0
    captured = capsys.readouterr()
    first = json.loads(captured.out)
    assert [b["status"] for b in first["batches"]] == ["validating", "validating"]
    assert "2 batch(es) still running" in captured.err and "run the same command again" in captured.err
    manual_env.advance(10)
    assert main(command) == 0  # run again: collects, creates nothing
    second = json.loads(capsys.readouterr().out)
    assert created(manual_env) == 2 and {b["id"] for b in second["batches"]} == {
        b["id"] for b in first["batches"]
    }
    assert all(b["status"] == "completed" and b["collected"] for b in second["batches"])
    assert all(r["output"] is not None for r in second["rows"])
    assert main([*command, "--resume"]) == 0 and created(manual_env) == 2
    assert json.loads(capsys.readouterr().out)["batches"] == []


def test_bad_batch_usage_and_unknown_model_exit_2_before_any_upload(
    fast_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv(tmp_path, "--no-wait")) == 2
    assert "--no-wait only apply with --batch" in capsys.readouterr().err
    data = write_data(tmp_path / "d.jsonl", 2)
    assert main(["eval", "--data", str(data), "--model", BASE, "--batch", "--no-cache"]) == 2
    assert "needs the answer cache" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse: over the API's limit
        main(argv(tmp_path, "--batch", "--batch-max-requests", "50001"))
    assert usage.value.code == 2 and "between 1 and 50,000" in capsys.readouterr().err
    assert (
        main(["eval", "--data", str(data), "--model", "ft:gpt-4o-mini-2024-07-18:org::gone", "--batch"]) == 2
    )
    assert "is not available" in capsys.readouterr().err
    assert not any(e.method == "POST" and e.path in ("/v1/files", BATCHES) for e in fast_env.journal)


def test_errored_lines_exit_1_and_fallback_sync_answers_them(
    fast_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_env.batch_fault(error_every=2, count=None)
    fast = ["--batch-poll-interval", "0.01"]
    assert main(argv(tmp_path, "--batch", *fast)) == 1
    assert "unanswered" in capsys.readouterr().err
    assert main(argv(tmp_path, "--batch", "--fallback", "sync", *fast)) == 0
    assert any(e.path == "/v1/chat/completions" for e in fast_env.journal)
