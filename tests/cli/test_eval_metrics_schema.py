"""``eval --json`` and ``run --json`` share one metrics schema; classification says what it must beat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.cli.test_eval import BASE, emulator_env, write_data  # noqa: F401 - emulator_env is a fixture

CONTRACT = ("accuracy", "majority_class_rate", "balanced_accuracy", "macro_f1", "cohen_kappa")


def test_eval_json_classification_details_have_the_chance_aware_scores(
    emulator_env: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = write_data(tmp_path / "test.jsonl", 8)
    argv = ["eval", "--data", str(data), "--model", BASE, "--evaluator", "classification", "--json"]
    assert main([*argv, "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    value = out["metrics"][BASE]["classification"]
    assert isinstance(value, float)
    details = out["metric_details"][BASE]["classification"]
    for key in CONTRACT:
        assert isinstance(details[key], (int, float)), key
    assert details["accuracy"] == value
    assert details["majority_class_rate"] == 0.5  # 4 "No", 4 "Yes"
    assert isinstance(details["beats_majority"], bool)
    assert set(details["intervals"]) >= set(CONTRACT)
