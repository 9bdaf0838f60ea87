"""The CLI's eval run: named after its data file (no model id), the models in its config, stable keys."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.cli.test_eval import write_data

BASE = "gpt-4o-mini-2024-07-18"


def test_cli_eval_run_is_named_and_keyed_without_model_ids(
    finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fakes.wandb_readback import read_runs

    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = write_data(tmp_path / "held-out.jsonl", 4)
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-cache", "--no-progress"]
    assert main([*argv, "--evaluator", "classification", "--wandb-project", "cli-eval"]) == 0
    (run,) = read_runs()
    digest = hashlib.sha256(data.read_bytes()).hexdigest()[:8]
    assert run.name == f"eval-held-out-{digest}"
    assert run.config["models"] == {"baseline": BASE}
    assert "eval/baseline/classification/balanced_accuracy" in run.summary
    assert not [k for k in run.summary if BASE in k]
    # its lineage: the evaluated data, as a dataset artifact of this project with the file's SHA-256
    inputs = run.config["lineage"]["inputs"]
    assert [i["sha256"] for i in inputs if i["type"] == "dataset"] == [
        hashlib.sha256(data.read_bytes()).hexdigest()
    ]


def test_a_fully_cached_re_evaluation_is_not_logged_twice_unless_asked(
    finetune_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fakes.wandb_readback import read_runs

    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = write_data(tmp_path / "test.jsonl", 3)
    argv = ["eval", "--data", str(data), "--model", BASE, "--cache", str(tmp_path / "c.db"), "--no-progress"]
    argv += ["--wandb-project", "cli-eval"]
    assert main(argv) == 0
    capsys.readouterr()
    requests = len(finetune_emulator.journal)
    assert main(argv) == 0  # every answer cached, the same evaluation: no second run
    assert "already logged" in capsys.readouterr().err
    assert len(finetune_emulator.journal) == requests
    (first,) = read_runs()
    assert main([*argv, "--max-tokens", "64"]) == 0  # other request parameters: another evaluation
    assert len(read_runs()) == 2
    assert main([*argv, "--wandb-log-again"]) == 0  # asked for
    runs = read_runs()
    assert len(runs) == 3 and {r.name for r in runs} == {first.name}
