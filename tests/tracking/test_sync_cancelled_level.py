"""A job that was only cancelled is reported at WARNING by sync, never as an ERROR; a failed job stays ERROR."""

from __future__ import annotations

import logging

import pytest

from finetune_wb.tracking.sync import sync_job
from tests.fakes.finetune_api import FakeFineTuneAPI, FakeJob, jsonl, training_lines


def test_sync_of_a_cancelled_job_logs_no_error(
    no_online_wandb: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    cancelled = api.add_job(FakeJob("ftjob-cancel00001", status="cancelled", event_steps=[1]))
    failed = api.add_job(
        FakeJob(
            "ftjob-failed00002",
            status="failed",
            event_steps=[1],
            error={"code": "invalid_file", "message": "line 2 has no assistant message", "param": None},
        )
    )
    client = api.client()
    with caplog.at_level(logging.INFO, logger="finetune_wb"):
        result = sync_job(cancelled.id, project="sync-cancel", client=client)
    assert result.outcome == "synced" and result.job_status == "cancelled"
    mine = [r for r in caplog.records if cancelled.id in r.getMessage()]
    assert mine, "the cancellation is still said"
    assert all(r.levelno < logging.ERROR for r in mine), [(r.levelname, r.getMessage()) for r in mine]
    assert any(r.levelno == logging.WARNING and "cancelled" in r.getMessage() for r in mine)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="finetune_wb"):
        sync_job(failed.id, project="sync-cancel", client=client)
    assert any(r.levelno == logging.ERROR and failed.id in r.getMessage() for r in caplog.records), (
        "a failed job is still an error"
    )
