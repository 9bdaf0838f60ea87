"""A model the server refuses (404 model_not_found) is asked once, not once per row; other models still run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_wb.evaluation import evaluate
from finetune_wb.evaluation.refusals import refused_models
from tests.evaluation.test_against_emulator import BASE, CHAT, FAST_RETRY, chat_journal, examples

TYPO = "gpt-4o-mini-2024-07-81"


def test_a_missing_model_is_asked_once_and_reported_once(finetune_emulator: Any, tmp_path: Path) -> None:
    emu = finetune_emulator
    emu.inject_latency(0.02, path=CHAT)  # so that every row would be in flight before the first 404
    report = evaluate(
        examples(30),
        models=[TYPO, BASE],
        client=emu.client(),
        cache=tmp_path / "c.sqlite3",
        retry=FAST_RETRY,
        concurrency=64,
        progress=False,
    )
    statuses = [e.status for e in chat_journal(emu)]
    assert statuses.count(404) == 1, statuses  # one request for the bad model, none after it
    assert statuses.count(200) == 30  # the good model answered every row
    bad = [r for r in report.rows if r.model == TYPO]
    assert len(bad) == 30 and all(r.output is None for r in bad)
    assert all(r.output is not None for r in report.rows if r.model == BASE)
    refused = refused_models(report.rows)
    assert list(refused) == [TYPO]
    message = refused[TYPO]
    assert TYPO in message and "not found" in message and "Check the model id" in message
    assert emu.base_url.rstrip("/") in message
    # the report's own warning says why the rows are missing, not "run again to retry them"
    (warning,) = [w for w in report.warnings if TYPO in w]
    assert "Check the model id" in warning and "retry them" not in warning

    # a second run asks the bad model once more (errors are never cached), still only once
    evaluate(
        examples(30),
        models=[TYPO, BASE],
        client=emu.client(),
        cache=tmp_path / "c.sqlite3",
        retry=FAST_RETRY,
        progress=False,
    )
    assert [e.status for e in chat_journal(emu)].count(404) == 2
