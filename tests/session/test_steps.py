"""The session's steps over an explicit :class:`StepContext`, without a FineTuneSession; run_config's data path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.data.build import build_examples
from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.errors import ConfigError
from finetune_wb.session.context import StepContext
from finetune_wb.session.data_step import as_template, examples_of, prepare_step, validate_step
from finetune_wb.session.runs import SessionRuns
from finetune_wb.session.state import SessionState


def _context(tmp_path: Path) -> StepContext:
    state = SessionState(project="steps")
    path = tmp_path / "s.json"
    return StepContext(state, path, SessionRuns(state, path, mode="disabled"))


def test_data_steps_work_on_a_bare_context(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    assert not ctx.runs.enabled and ctx.data_dir == tmp_path / "s-data"
    with pytest.raises(ConfigError, match="no train data yet"):
        ctx.require_path("train")
    with pytest.raises(ConfigError, match="no job yet"):
        ctx.retrieve_job()
    assert ctx.spec() is None

    template = as_template(demo_template().model_dump())
    examples = examples_of(load_demo_records()[:30], template)
    train, test = prepare_step(
        ctx, examples, template=template, n_train=12, train_fraction=None, seed=4, stratify=True
    )
    assert (len(train), len(test)) == (12, 18)
    saved = json.loads(ctx.state_path.read_text(encoding="utf-8"))
    assert saved["n_train"] == 12 and saved["train_path"] == str(ctx.require_path("train"))

    report = validate_step(ctx, model="gpt-4o-mini-2024-07-18")
    assert ctx.report is report and report.ok
    assert json.loads(ctx.state_path.read_text(encoding="utf-8"))["validation"]["n_examples"] == 12

    ctx.require_path("train").unlink()
    with pytest.raises(ConfigError, match="is missing"):
        ctx.require_path("train")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['sytem'\]"):
        as_template({"sytem": "x"})


def test_prepare_takes_examples_already_built_as_they_are(tmp_path: Path) -> None:
    template = demo_template()
    examples = build_examples(load_demo_records()[:20], template=template)
    assert examples_of(examples, template) == examples
    assert examples_of([], template) == []


def test_run_config_builds_the_examples_once(
    finetune_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_wb.config.model import RunConfig
    from finetune_wb.data import build
    from finetune_wb.session.config_runner import run_config

    calls: list[int] = []
    real = build.build_examples

    def counting(records: Any, **kwargs: Any) -> Any:
        calls.append(len(records))
        return real(records, **kwargs)

    monkeypatch.setattr(build, "build_examples", counting)
    finetune_emulator.pace = 0.01
    config = RunConfig.from_dict(
        {
            "wandb_mode": "disabled",
            "data": {"demo": True, "limit": 30},
            "split": {"n_train": 12},
            "job": {"model": "gpt-4o-mini-2024-07-18", "n_epochs": 1},
            "evaluation": {"skip": True},
        }
    )
    result = run_config(config, client=finetune_emulator.client(), state_path=tmp_path / "s.json")
    assert result.job_status == "succeeded" and result.validation and result.validation["n_examples"] == 12
    assert calls == [30]
