"""``finetune-wb serve --num-processes / --gradient-checkpointing``: checked, and passed to the trainer."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.errors import EmulatorError


def test_num_processes_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "m", "--num-processes", "0"]) == 2
    assert "--num-processes must be >= 1, got 0" in capsys.readouterr().err


def test_flags_reach_the_trainer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import finetune_wb.emulator.trl_trainer as trl_trainer

    seen: dict[str, Any] = {}

    def fake_trainer(model: str, **kw: Any) -> Any:
        seen.update(kw, model=model)
        raise EmulatorError("stop here")  # before any server starts

    monkeypatch.setattr(trl_trainer, "TrlTrainer", fake_trainer)
    argv = ["serve", "--model", "m", "--num-processes", "4", "--gradient-checkpointing", "--port", "0"]
    assert main(argv) == 2
    assert seen["model"] == "m" and seen["num_processes"] == 4 and seen["gradient_checkpointing"] is True
    assert "stop here" in capsys.readouterr().err
    seen.clear()
    assert main(["serve", "--model", "m", "--port", "0"]) == 2
    assert seen["num_processes"] is None and seen["gradient_checkpointing"] is False  # None: one per GPU
