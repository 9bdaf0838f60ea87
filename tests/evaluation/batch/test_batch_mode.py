"""evaluate(mode="batch") against the emulator: sharding, shared cache, resume, expiry, errors, faults."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import BatchInputError
from finetune_wb.evaluation import BatchOptions, evaluate
from tests.evaluation.batch.conftest import BASE, OTHER, examples, posts, run

CHAT = "/v1/chat/completions"
BATCHES = "/v1/batches"


def test_batch_mode_shards_answers_and_shares_the_cache_with_sync(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    report = run(emu, cache, n=12, max_requests=5)
    assert report.ok and report.params["mode"] == "batch"
    assert posts(emu, BATCHES) == 6 and posts(emu, CHAT) == 0  # 12 rows x 2 models in shards of <= 5
    assert sorted(b.n_requests for b in report.batches) == [2, 2, 5, 5, 5, 5]
    assert all(b.status == "completed" and b.collected and b.id for b in report.batches)
    assert {b.model for b in report.batches} == {BASE, OTHER}
    assert emu.batch_lines_answered == 24
    for m in report.models:
        assert m.n_answered == 12 and m.estimated_batch_cost_usd == pytest.approx(m.estimated_cost_usd / 2)
    b = report.batches[0]
    assert b.cost_usd == pytest.approx(b.sync_cost_usd / 2) and b.estimated_cost_usd is not None
    assert "at the batch price" in report.summary() and "batch " + str(b.id) in report.summary()

    again = run(emu, cache, n=12, max_requests=5)  # a re-run asks nothing
    assert again.ok and again.batches == [] and posts(emu, BATCHES) == 6 and posts(emu, CHAT) == 0
    sync = evaluate(examples(12), models=[BASE, OTHER], client=emu.client(), cache=cache, progress=False)
    assert sync.ok and posts(emu, CHAT) == 0  # the synchronous engine finds the batch answers
    assert [r.output for r in sync.rows] == [r.output for r in report.rows]


def test_sync_answers_are_reused_by_batch_mode(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    evaluate(examples(8), models=[BASE], client=emu.client(), cache=cache, progress=False)
    assert posts(emu, CHAT) == 8
    report = run(emu, cache, n=10, models=[BASE])
    assert report.ok and posts(emu, BATCHES) == 1 and report.batches[0].n_requests == 2
    assert emu.batch_lines_answered == 2


def test_no_wait_then_the_same_call_collects_without_a_new_batch(manual_emu: Any, tmp_path: Path) -> None:
    emu, cache = manual_emu, tmp_path / "c.sqlite3"
    first = run(emu, cache, n=6, wait=False)
    assert not first.ok and posts(emu, BATCHES) == 2
    assert all(r.error and r.error.startswith("in batch ") for r in first.rows)
    assert all(b.status == "validating" and not b.collected for b in first.batches)
    assert any("still running" in w for w in first.warnings)
    emu.advance(3)
    second = run(emu, cache, n=6, wait=False)  # still running: nothing new is sent
    assert posts(emu, BATCHES) == 2 and {b.id for b in second.batches} == {b.id for b in first.batches}
    assert {b.status for b in second.batches} == {"in_progress"}
    emu.advance(10)
    done = run(emu, cache, n=6)
    assert done.ok and posts(emu, BATCHES) == 2 and emu.batch_lines_answered == 12
    assert posts(emu, CHAT) == 0


def test_expired_batch_keeps_its_finished_part_and_asks_the_rest_again(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    emu.batch_fault(expire_after_fraction=0.5)
    first = run(emu, cache, n=8, models=[BASE])
    [batch] = first.batches
    assert batch.status == "expired" and batch.n_collected == 4 and batch.n_errored == 4
    answered = [r for r in first.rows if r.output is not None]
    assert len(answered) == 4
    assert all(
        "ended expired" in (r.error or "") or "batch_expired" in (r.error or "")
        for r in first.rows
        if r.output is None
    )
    second = run(emu, cache, n=8, models=[BASE])
    assert second.ok and posts(emu, BATCHES) == 2 and second.batches[0].n_requests == 4
    assert emu.batch_lines_answered == 8  # nothing was paid for twice


def test_rows_a_sync_run_answered_after_a_failed_batch_are_not_reported_unanswered(
    emu: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "c.sqlite3"
    emu.batch_fault(expire_after_fraction=0.5)
    assert not run(emu, cache, n=6, models=[BASE]).ok
    assert evaluate(examples(6), models=[BASE], client=emu.client(), cache=cache, progress=False).ok
    assert posts(emu, CHAT) == 3
    again = run(emu, cache, n=6, models=[BASE])
    assert again.ok and again.batches == [] and posts(emu, BATCHES) == 1


def test_errored_lines_keep_their_error_or_fall_back_to_sync(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    emu.batch_fault(error_every=3)
    first = run(emu, cache, n=9, models=[BASE])
    failed = [r for r in first.rows if r.output is None]
    assert len(failed) == 3 and all("HTTP 500" in (r.error or "") for r in failed)
    assert posts(emu, CHAT) == 0
    emu.batch_fault(error_every=1)  # the next batch fails every line: with fallback, sync answers them
    second = run(emu, cache, n=10, models=[BASE], fallback="sync")
    [batch] = second.batches  # the 3 errored rows and the new row 9 went into one new batch first
    assert batch.n_requests == 4 and batch.n_errored == 4
    assert second.ok and posts(emu, CHAT) == 4
    third = run(emu, cache, n=10, models=[BASE], fallback="sync")
    assert third.ok and third.batches == [] and posts(emu, CHAT) == 4 and posts(emu, BATCHES) == 2


def test_failed_validation_shows_the_server_errors_with_their_rows(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    emu.batch_fault(fail_validation="This model is not available in the Batch API.")
    first = run(emu, cache, n=4, models=[BASE])
    [batch] = first.batches
    assert batch.status == "failed" and batch.errors[0]["message"].startswith("This model is not")
    assert batch.errors[0]["line"] == 1 and batch.errors[0]["example_index"] == 0
    assert any("failed validation" in w for w in first.warnings)
    assert all("failed validation" in (r.error or "") for r in first.rows)
    second = run(emu, cache, n=4, models=[BASE])
    assert second.ok and posts(emu, BATCHES) == 2


def test_unknown_model_and_oversized_line_are_refused_before_any_upload(emu: Any, tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="ft:gpt-4o-mini-2024-07-18:org::missing"):
        run(emu, tmp_path / "a.sqlite3", n=3, models=[BASE, "ft:gpt-4o-mini-2024-07-18:org::missing"])
    rows = examples(3)
    rows[1].messages[1].content = "a very long clause " * 100
    with pytest.raises(
        BatchInputError, match=r"example 1 \(gpt-4.1-mini-2025-04-14\): .*over the 1024-byte limit"
    ):
        evaluate(
            rows,
            models=[OTHER, BASE],
            client=emu.client(),
            cache=tmp_path / "b.sqlite3",
            progress=False,
            mode="batch",
            batch=BatchOptions(max_bytes=1024),
        )
    assert posts(emu, "/v1/files") == 0 and posts(emu, BATCHES) == 0


def test_a_create_that_reached_the_server_but_failed_is_not_sent_twice(emu: Any, tmp_path: Path) -> None:
    emu.inject_fault(path=BATCHES, method="POST", status=500, after_handler=True)
    report = run(emu, tmp_path / "c.sqlite3", n=5, models=[BASE])
    assert report.ok
    created = [e for e in emu.journal if e.method == "POST" and e.path == BATCHES]
    assert len(created) == 1 and created[0].status == 500  # found by its metadata, never created again
    assert emu.batch_lines_answered == 5


def test_a_batch_created_but_not_recorded_is_adopted_by_its_metadata(manual_emu: Any, tmp_path: Path) -> None:
    emu, cache = manual_emu, tmp_path / "c.sqlite3"
    run(emu, cache, n=4, models=[BASE], wait=False)
    with sqlite3.connect(cache) as conn:  # as if killed between batches.create and recording its id
        conn.execute("UPDATE batch_shards SET batch_id = NULL, status = 'not_submitted'")
    emu.advance(10)
    done = run(emu, cache, n=4, models=[BASE])
    assert done.ok and posts(emu, BATCHES) == 1 and emu.batch_lines_answered == 4


def test_a_truncated_output_file_loses_no_good_line(manual_emu: Any, tmp_path: Path) -> None:
    emu, cache = manual_emu, tmp_path / "c.sqlite3"
    [batch] = run(emu, cache, n=6, models=[BASE], wait=False).batches
    emu.advance(10)
    out = emu.client().batches.retrieve(batch.id).output_file_id
    path = emu.core.store.blob_path(out)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + b"{not json\n" + b"".join(lines[3:5]) + lines[5][:40])
    report = run(emu, cache, n=6, models=[BASE])
    [collected] = report.batches
    assert collected.n_collected == 4 and len(collected.skipped_lines) == 2
    assert "line 3" in collected.skipped_lines[0] and "line 6" in collected.skipped_lines[1]
    assert any("could not be read" in w for w in report.warnings)
    assert sum(r.output is not None for r in report.rows) == 4
    [retry] = run(emu, cache, n=6, models=[BASE], wait=False).batches  # the 2 skipped rows, again
    assert retry.n_requests == 2 and posts(emu, BATCHES) == 2
    emu.advance(10)
    assert run(emu, cache, n=6, models=[BASE]).ok


def test_batch_mode_needs_a_cache(emu: Any) -> None:
    from finetune_wb.errors import EvaluationError

    with pytest.raises(EvaluationError, match="needs the answer cache"):
        evaluate(examples(2), models=BASE, client=emu.client(), cache=None, progress=False, mode="batch")


def test_waiting_gives_up_after_the_timeout_and_the_batches_keep_running(
    manual_emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "c.sqlite3"
    settings = BatchOptions(poll_interval=0.01, max_poll_interval=0.02, timeout=0.1)
    report = evaluate(
        examples(3), models=[BASE], client=manual_emu.client(), cache=cache, mode="batch", batch=settings
    )  # progress bars on: the batch bar counts requests
    assert not report.ok and all((r.error or "").startswith("in batch ") for r in report.rows)
    assert "batch" in capsys.readouterr().err
    manual_emu.advance(10)
    assert run(manual_emu, cache, n=3, models=[BASE]).ok and posts(manual_emu, BATCHES) == 1
