"""Batch mode through FineTuneSession.evaluate (same W&B eval run), and two callers sharing one cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.evaluation import BatchOptions
from finetune_wb.session.facade import FineTuneSession
from tests.evaluation.batch.conftest import BASE, posts, run
from tests.fakes.wandb_readback import read_run, run_dirs


def test_session_evaluate_passes_batch_mode_through(emu: Any, tmp_path: Path) -> None:
    import os

    session = FineTuneSession(project="batch", state_path=tmp_path / "s.json", client=emu.client())
    session.prepare(load_demo_records()[:24], template=demo_template(), n_train=12, seed=3)
    report = session.evaluate(
        models=[BASE], mode="batch", batch=BatchOptions(poll_interval=0.01, max_poll_interval=0.05)
    )
    assert report.ok and report.params["mode"] == "batch" and len(report.batches) == 1
    assert posts(emu, "/v1/chat/completions") == 0 and posts(emu, "/v1/batches") == 1
    [eval_run] = [d for d in run_dirs(os.environ["WANDB_DIR"]) if read_run(d).config.get("eval_models")]
    assert read_run(eval_run).exit_code == 0


def test_two_callers_on_one_cache_create_one_batch_per_model(manual_emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    reports: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            reports.append(run(manual_emu, cache, n=8, wait=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(reports) == 2
    assert posts(manual_emu, "/v1/batches") == 2  # the second caller found the first one's batches
    assert {b.id for b in reports[0].batches} == {b.id for b in reports[1].batches}
    manual_emu.advance(10)
    assert run(manual_emu, cache, n=8).ok and posts(manual_emu, "/v1/batches") == 2
