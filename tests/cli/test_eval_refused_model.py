"""``finetune-wb eval --model <typo>``: one request for the typo, one message naming it, exit 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.cli.test_eval import BASE, CHAT, emulator_env, write_data

__all__ = ["emulator_env"]

TYPO = "gpt-4o-mini-2024-07-81"


def test_eval_with_a_misspelt_model_stops_asking_it(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = emulator_env
    data = write_data(tmp_path / "test.jsonl", 12)
    argv = ["eval", "--data", str(data), "--model", TYPO, BASE, "--cache", str(tmp_path / "c.db")]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err
    statuses = [e.status for e in emu.journal if e.path == CHAT and e.method == "POST"]
    assert statuses.count(404) == 1 and statuses.count(200) == 12
    said = [line for line in err.splitlines() if TYPO in line]
    assert len(said) == 1, err  # reported once, not once per row
    assert said[0].startswith("error: ") and "not found" in said[0] and "Check the model id" in said[0]
    assert "run the same command again" not in err  # running again would not help
