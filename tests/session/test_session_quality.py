"""The session's data-quality gate against the emulator: leaked test rows and secrets stop the upload unless
the caller accepts them; the outcome is in the state and in the dataset artifact."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import ConfigError, DataQualityError
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.emulator_helpers import jsonl, yes_no_examples

SPEC = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=1)
KEY = "sk-proj-Q7fT2mZk9LpX4vB8nR1sW6yC3hJ5dG0a"


def _uploads(emu: Any) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/files" and e.status < 400)


def _session(emu: Any, tmp_path: Path, **kw: Any) -> FineTuneSession:
    kw.setdefault("wandb_mode", "disabled")
    return FineTuneSession(
        project="t-quality", client=emu.client(), state_path=tmp_path / "state.json", poll_interval=0.1, **kw
    )


def _files(tmp_path: Path, *, leak: bool = False, secret: bool = False) -> tuple[Path, Path]:
    train = yes_no_examples(20)
    test = yes_no_examples(6, offset=20)
    if leak:
        test[2] = train[7]  # test line 3 is train line 8
    if secret:
        train[4]["messages"][1]["content"] += f" (api key {KEY})"
    (tmp_path / "train.jsonl").write_bytes(jsonl(train))
    (tmp_path / "test.jsonl").write_bytes(jsonl(test))
    return tmp_path / "train.jsonl", tmp_path / "test.jsonl"


def test_leaked_test_rows_stop_before_the_upload_until_accepted(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    session = _session(finetune_emulator, tmp_path)
    session.use_files(*_files(tmp_path, leak=True))
    with pytest.raises(DataQualityError) as info:
        session.fine_tune(SPEC)
    message = str(info.value)
    assert "leakage" in message and "test line 3" in message and "training line 8" in message
    assert "accept_quality={'leakage'}" in message
    assert info.value.report.counts["leakage"] == 1
    assert _uploads(finetune_emulator) == 0 and session.state.training_file_id is None
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["quality"]["blocking"] == ["leakage"] and saved["quality"]["counts"] == {"leakage": 1}

    job = session.fine_tune(SPEC, accept_quality={"leakage"})
    assert job.id.startswith("ftjob-") and _uploads(finetune_emulator) == 1
    assert session.state.quality is not None and session.state.quality["accepted"] == ["leakage"]
    # the gate was passed: the session (or a resumed one) returns its job, whatever the quality options
    again = _session(finetune_emulator, tmp_path).fine_tune(SPEC)
    assert again.id == job.id and _uploads(finetune_emulator) == 1


def test_a_secret_stops_the_session_and_warn_lets_it_through(
    finetune_emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = _session(finetune_emulator, tmp_path)
    session.use_files(*_files(tmp_path, secret=True))
    with pytest.raises(DataQualityError, match=r"secret .*line 5") as info:
        session.fine_tune(SPEC)
    assert KEY not in str(info.value) and _uploads(finetune_emulator) == 0
    with caplog.at_level(logging.WARNING, logger="finetune_wb.session"):
        job = session.fine_tune(SPEC, quality="warn")
    assert job.id.startswith("ftjob-") and _uploads(finetune_emulator) == 1
    warned = [r.getMessage() for r in caplog.records if "quality='warn'" in r.getMessage()]
    assert len(warned) == 1 and "[secret]" in warned[0] and KEY not in warned[0]


def test_quality_off_skips_the_check_and_bad_options_are_config_errors(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    session = _session(finetune_emulator, tmp_path)
    session.use_files(*_files(tmp_path, leak=True))
    with pytest.raises(ConfigError, match="unknown finding code"):
        session.fine_tune(SPEC, accept_quality={"leak"})
    with pytest.raises(ConfigError, match="quality must be"):
        session.fine_tune(SPEC, quality="strict")  # type: ignore[arg-type]
    assert _uploads(finetune_emulator) == 0
    session.fine_tune(SPEC, quality="off")
    assert session.state.quality is None and _uploads(finetune_emulator) == 1


def test_check_quality_reports_without_stopping_and_near_leaks_only_warn(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    train, test = _files(tmp_path)
    long = " ".join(f"term{k} of the supply contract" for k in range(12))
    train_rows = [json.loads(line) for line in train.read_text().splitlines()]
    test_rows = [json.loads(line) for line in test.read_text().splitlines()]
    train_rows[5]["messages"][1]["content"] = f"{long}. Is it signed?"
    test_rows[0]["messages"][1]["content"] = f"{long}. Was it signed?"  # test line 1 ~ train line 6
    train.write_bytes(jsonl(train_rows))
    test.write_bytes(jsonl(test_rows))
    session = _session(finetune_emulator, tmp_path)
    session.use_files(train, test)
    report = session.check_quality()
    (leak,) = [f for f in report.findings if f.code == "leakage"]
    assert leak.severity == "warning" and leak.lines == [6] and leak.test_lines == [1]
    strict = session.check_quality(near_leakage_severity="error")
    assert not strict.ok
    assert session.fine_tune(SPEC).id.startswith("ftjob-")  # a near leak does not stop the session


def test_prepare_can_keep_near_duplicates_on_one_side(finetune_emulator: Any, tmp_path: Path) -> None:
    records = [
        {
            "q": f"Clause {i // 3} covers notice and term for party {i // 3}. Does it mention notice?",
            "a": "Yes",
        }
        for i in range(30)
    ]
    records += [{"q": f"Unique clause number {i} about indemnity only.", "a": "No"} for i in range(30)]
    template = {"user": "{q}", "assistant": "{a}"}
    session = _session(finetune_emulator, tmp_path)
    session.prepare(records, template=template, train_fraction=0.7, seed=3, group_near_duplicates=True)
    assert session.check_quality().counts.get("leakage") is None
    assert session.state.split is not None and session.state.split["group_near_duplicates"] is True
    other = _session(finetune_emulator, tmp_path / "plain")
    other.prepare(records, template=template, train_fraction=0.7, seed=3)
    assert other.check_quality().counts["leakage"] > 0


def test_the_dataset_artifact_carries_the_quality_counts_and_findings(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    from tests.fakes.wandb_readback import read_runs, staged_file

    session = _session(finetune_emulator, tmp_path, wandb_mode="offline")
    session.use_files(*_files(tmp_path, leak=True, secret=True))
    session.fine_tune(SPEC, accept_quality={"leakage", "secret"})
    (dataset_run,) = [r for r in read_runs() if r.job_type == "dataset"]
    train = next(a for a in dataset_run.artifacts() if a["metadata"].get("split") == "train")
    counts = {e["code"]: e["n"] for e in train["metadata"]["quality"]["counts"]}
    assert counts == {"leakage": 1, "secret": 1}
    table = json.loads(staged_file(train, "quality_findings.table.json").read_text())
    assert sorted(row[0] for row in table["data"]) == ["leakage", "secret"]
    examples = json.loads(staged_file(train, "examples.table.json").read_text())
    assert (
        KEY not in json.dumps(examples)
        and KEY not in json.dumps(table)
        and KEY not in json.dumps(train["metadata"])
    )
