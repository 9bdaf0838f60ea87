"""retirements(): retired, soon-retired, unaffected and unknown fine-tunes; the server's date over the table."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.migration import retirements
from finetune_wb.migration.inventory import parse_shutdown_date
from finetune_wb.tracking.artifacts import ArtifactRef, remember
from finetune_wb.tracking.synced import remember_synced
from tests.migration.helpers import fine_tune, yes_no_examples

TODAY = dt.date(2026, 12, 2)


@pytest.fixture
def four_fine_tunes(finetune_emulator: Any) -> dict[str, tuple[str, str]]:
    emu = finetune_emulator
    client = emu.client()
    data = yes_no_examples(12)
    out = {
        "retired": fine_tune(client, data, base="gpt-3.5-turbo-0125"),  # table: 2026-10-23
        "retiring": fine_tune(client, data, base="gpt-4.1-mini-2025-04-14"),  # table: 2027-01-14
        "server_ok": fine_tune(client, data, base="gpt-4o-mini-2024-07-18"),  # table 2027-01-14, server 2028
        "unknown": fine_tune(client, data, base="gpt-4.1-nano-2025-04-14"),  # in no table
    }
    emu.retire("gpt-4o-mini-2024-07-18", at="2028-03-01")  # in the future: still answers
    return out


def test_statuses_days_left_sources_and_urgency_order(finetune_emulator: Any, four_fine_tunes: Any) -> None:
    inv = retirements(finetune_emulator.client(), today=TODAY)
    by_model = {m.model: m for m in inv.models}
    retired = by_model[four_fine_tunes["retired"][0]]
    assert (retired.status, retired.shutdown_date, retired.days_left) == (
        "retired",
        dt.date(2026, 10, 23),
        -40,
    )
    assert retired.date_source == "table" and "deprecations" in (retired.source_detail or "")
    assert "shut down" in retired.next_step
    retiring = by_model[four_fine_tunes["retiring"][0]]
    assert (retiring.status, retiring.days_left, retiring.base_model) == (
        "retiring",
        43,
        "gpt-4.1-mini-2025-04-14",
    )
    assert "finetune-wb snapshot" in retiring.next_step
    ok = by_model[four_fine_tunes["server_ok"][0]]
    assert (ok.status, ok.shutdown_date, ok.date_source) == ("ok", dt.date(2028, 3, 1), "server")
    unknown = by_model[four_fine_tunes["unknown"][0]]
    assert (unknown.status, unknown.shutdown_date, unknown.days_left) == ("unknown", None, None)
    assert [m.status for m in inv.models] == ["retired", "retiring", "unknown", "ok"]
    assert inv.counts == {"retired": 1, "retiring": 1, "unknown": 1, "ok": 1}
    assert all(m.job_id and m.listed for m in inv.models)
    # a wider window makes the server-dated model "retiring"; a later today makes the retiring one retired
    assert by_model[ok.model].status == "ok"
    wide = {m.model: m for m in retirements(finetune_emulator.client(), today=TODAY, window_days=500).models}
    assert wide[ok.model].status == "retiring"
    later = {m.model: m for m in retirements(finetune_emulator.client(), today=dt.date(2027, 2, 1)).models}
    assert later[retiring.model].status == "retired"


def test_wandb_lineage_is_read_from_the_local_records(finetune_emulator: Any, four_fine_tunes: Any) -> None:
    model, job = four_fine_tunes["retiring"]
    before = {m.model: m for m in retirements(finetune_emulator.client(), today=TODAY).models}[model]
    assert not before.wandb.synced_job and not before.wandb.model_artifact
    assert "finetune-wb sync" in before.next_step
    remember_synced(
        job, project="p", entity=None, run_id="r1", run_dir=None, job_status="succeeded", offline=True
    )
    remember(
        ArtifactRef(
            name=f"model-{job}",
            type="model",
            digest="d" * 64,
            metadata={"fine_tuned_model": model, "job_id": job},
        )
    )
    after = {m.model: m for m in retirements(finetune_emulator.client(), today=TODAY).models}[model]
    assert after.wandb.synced_job and after.wandb.model_artifact
    assert "finetune-wb sync" not in after.next_step


def test_cli_json_contract(
    finetune_emulator: Any, four_fine_tunes: Any, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    assert main(["retirements", "--json", "--today", "2026-12-02"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["models"]) == 4
    for row in out["models"]:
        assert {"model", "base_model", "shutdown_date", "days_left", "status"} <= set(row)
        assert row["status"] in ("retired", "retiring", "ok", "unknown")
    first = out["models"][0]
    assert (first["status"], first["shutdown_date"], first["days_left"]) == ("retired", "2026-10-23", -40)
    assert out["counts"]["retired"] == 1
    assert main(["retirements", "--today", "2026-12-02"]) == 0
    text = capsys.readouterr().out
    assert "retired" in text and "4 fine-tuned model(s)" in text
    assert main(["retirements", "--window-days", "-1"]) == 2


def test_no_fine_tunes_is_an_empty_inventory(finetune_emulator: Any) -> None:
    inv = retirements(finetune_emulator.client(), today=TODAY)
    assert inv.models == [] and "No fine-tuned models" in inv.summary()


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("2027-01-14", dt.date(2027, 1, 14)),
        ("2027-01-14T00:00:00Z", dt.date(2027, 1, 14)),
        (1799884800, dt.date(2027, 1, 14)),
        (None, None),
        ("soon", None),
        (True, None),
    ],
)
def test_parse_shutdown_date(raw: Any, want: Any) -> None:
    assert parse_shutdown_date(raw) == want
