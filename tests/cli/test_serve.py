"""``finetune-wb serve``: usage errors and the message when the [local] extra is missing (no torch needed)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from finetune_wb.cli import main


def test_trl_without_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--trainer", "trl"]) == 2
    assert "--trainer trl needs --model" in capsys.readouterr().err


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "m", "--lora-r", "0"]) == 2
    assert "--lora-r must be >= 1" in capsys.readouterr().err


def test_missing_local_extra_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def without_trl(name: str, *args: Any) -> Any:
        return None if name in ("trl", "peft") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_trl)
    assert main(["serve", "--trainer", "trl", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "trl, peft" in err and "pip install 'finetune-wb[local]'" in err
