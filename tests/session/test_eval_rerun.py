"""A session's evaluation run again: nothing new to log means no second W&B run, unless asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.wandb_readback import read_run, run_dirs

BASE = "gpt-4o-mini-2024-07-18"
OTHER = "gpt-4.1-mini-2025-04-14"


def _eval_dirs() -> list[Path]:
    return [d for d in run_dirs(os.environ["WANDB_DIR"]) if read_run(d).config.get("eval_models")]


def test_a_fully_cached_rerun_is_not_logged_again_and_a_changed_one_is(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    session = FineTuneSession(
        project="rerun", state_path=tmp_path / "s.json", client=finetune_emulator.client(), poll_interval=0.05
    )
    session.prepare(load_demo_records()[:24], template=demo_template(), n_train=12, seed=3)
    session.evaluate(models=[BASE], concurrency=4)
    assert len(_eval_dirs()) == 1

    again = session.evaluate(models=[BASE], concurrency=4)  # every answer cached, same evaluation
    assert all(m.n_requests == 0 for m in again.models)
    assert len(_eval_dirs()) == 1

    before = set(_eval_dirs())
    changed = session.evaluate(models=[BASE, OTHER], concurrency=4)  # a new model: new answers, a new run
    assert any(m.n_requests > 0 for m in changed.models)
    dirs = _eval_dirs()
    assert len(dirs) == 2
    # the run this evaluation added (run directories started in the same second do not sort by time)
    (newest,) = set(dirs) - before
    run = read_run(newest)
    assert run.exit_code == 0 and set(run.config["models"].values()) == {BASE, OTHER}

    session.evaluate(models=[BASE, OTHER], concurrency=4, log_again=True)  # asked to: logged again
    assert len(_eval_dirs()) == 3
