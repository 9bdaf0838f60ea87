"""``finetune-wb eval`` against the emulator, configured only through OPENAI_API_KEY / OPENAI_BASE_URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"
OTHER = "gpt-4.1-nano-2025-04-14"


def write_data(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        ex = {
            "messages": [
                {"role": "user", "content": f"Is clause {i} marked confidential?"},
                {"role": "assistant", "content": "Yes" if i % 2 else "No"},
            ]
        }
        lines.append(json.dumps(ex))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def emulator_env(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def test_eval_json_output(emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path / "test.jsonl", 6)
    argv = ["eval", "--data", str(data), "--model", BASE, "--model", OTHER, "--json"]
    argv += ["--evaluator", "exact_match", "--evaluator", "classification", "--cache", str(tmp_path / "c.db")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["metrics"]) == {BASE, OTHER}
    assert set(out["metrics"][BASE]) == {"exact_match", "classification"}
    assert "confusion_matrix" in out["metrics"][BASE]["classification"]["details"]
    assert len(out["rows"]) == 12
    row = out["rows"][0]
    assert {"model", "output", "error", "scores"} <= set(row)
    assert row["error"] is None and set(row["scores"]) == {"exact_match", "classification"}
    assert out["comparisons"][0]["test"] == "mcnemar_exact"


def test_eval_exit_code_and_retry_of_unanswered_rows(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = emulator_env
    data = write_data(tmp_path / "test.jsonl", 5)
    emu.inject_fault(path=CHAT, method="POST", status=400, count=2)  # not transient: not retried
    argv = ["eval", "--data", str(data), "--model", BASE, "--cache", str(tmp_path / "c.db"), "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "2 row(s) unanswered" in captured.err
    assert "exact_match" in captured.out
    before = len(emu.journal)
    assert main(argv) == 0  # the same command asks again for the two missing rows only
    assert len([e for e in emu.journal[before:] if e.path == CHAT]) == 2


def test_eval_bad_input(emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path / "missing.jsonl"), "--model", BASE]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "no answer"}]}\n')
    assert main(["eval", "--data", str(bad), "--model", BASE]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err
    good = write_data(tmp_path / "good.jsonl", 2)
    assert main(["eval", "--data", str(good), "--model", BASE, "--evaluator", "nope"]) == 1
    assert "unknown evaluator 'nope'" in capsys.readouterr().err


def test_eval_logs_a_wandb_eval_run(emulator_env: Any, tmp_path: Path) -> None:
    from wandb_readback import read_runs

    data = write_data(tmp_path / "test.jsonl", 4)
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-cache", "--no-progress"]
    assert main([*argv, "--wandb-project", "cli-eval"]) == 0
    (run,) = read_runs()
    assert run.job_type == "eval"
    assert run.state == "finished"  # the CLI started it, so the CLI finished it
    assert f"eval/{BASE}/exact_match" in run.summary
