"""Tracking: dataset artifacts, lineage, the fine-tune tracker — all against offline W&B, read back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.jobs.events import JobEvent
from finetune_wb.tracking import (
    ArtifactRef,
    FineTuneTracker,
    dataset_statistics,
    is_offline,
    link_input,
    log_dataset,
    model_ref,
    recorded_artifacts,
)
from finetune_wb.tracking.tables import COLUMNS, example_rows
from tests.fakes.finetune_api import API_KEY, FakeFineTuneAPI, FakeJob, dpo_lines, jsonl, training_lines
from tests.fakes.wandb_readback import (
    cli_inspect,
    files_containing,
    read_run,
    read_runs,
    run_dir_of,
    staged_file,
)

WANDB_KEY = "wandb-secret-key-abcdefghijklmnop0123456789"


def _init(**kwargs: Any) -> Any:
    import wandb

    return wandb.init(project="tracking-tests", reinit="create_new", **kwargs)


def test_statistics_and_tables_take_any_shape() -> None:
    data = jsonl(training_lines()) + b"{not json\n" + jsonl(dpo_lines())
    stats = dataset_statistics(data)
    assert stats["n_examples"] == 5 and stats["n_invalid_lines"] == 1 and stats["n_lines"] == 6
    assert stats["formats"] == {"chat": 4, "dpo": 1} and stats["format"] == "mixed"
    assert stats["n_with_tools"] == 1
    assert stats["messages_per_example"] == {"min": 1, "mean": 3.0, "max": 5}
    assert stats["label_balance"] == {"No": 2, "Yes": 2} and stats["n_labels"] == 2

    rows = [dict(zip(COLUMNS, r, strict=True)) for r in example_rows(data)]
    assert [r["format"] for r in rows] == ["chat", "chat", "chat", "chat", "invalid", "dpo"]
    five = rows[2]  # system + 4 turns: the prompt keeps the earlier assistant turn, the target is the last
    assert five["n_messages"] == 5 and five["system"] == "Answer Yes or No."
    assert (
        five["prompt"] == "user: Clause B\nassistant: thinking\nuser: Final?" and five["completion"] == "Yes"
    )
    tool = rows[3]
    assert tool["tools"] == "get_weather" and "[calls] get_weather({})" in tool["prompt"]
    assert "tool: sunny" in tool["prompt"] and tool["completion"] == "No"
    dpo = rows[5]
    assert (dpo["prompt"], dpo["completion"], dpo["rejected"]) == ("user: Say hi", "Hi!", "Go away.")
    assert example_rows(data, max_rows=2) == example_rows(data)[:2]


def test_free_text_answers_are_not_labels() -> None:
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(6)
    ]
    assert "label_balance" not in dataset_statistics(jsonl(lines))


def test_is_offline_follows_mode_and_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert is_offline()  # conftest: WANDB_MODE=offline
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert is_offline()  # online mode asked for, but no credentials: still offline, never prompt
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    assert not is_offline()


def test_dataset_artifact_lineage_and_dedup_offline(
    tmp_path: Path, no_online_wandb: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)  # present but offline mode wins
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret-key-0123456789")
    path = tmp_path / "legal.jsonl"
    path.write_bytes(jsonl(training_lines()))
    run = _init(job_type="prepare")
    ref = log_dataset(path, run=run, split="train")
    again = log_dataset(path, run=run, split="train", file_id="file-abc")  # same data: no new artifact
    examples_ref = log_dataset(training_lines()[:2], run=run, split="test", name="legal-test")
    link_input(run, ref)
    run_id = run.id
    run.finish()
    # Another run, the same bytes: W&B's manifest digest is the same, so W&B keeps the existing version.
    run2 = _init(job_type="prepare")
    ref2 = log_dataset(path, run=run2, split="train", validate=False)
    run2.finish()
    assert ref2.wandb_digest == ref.wandb_digest and ref2.digest == ref.digest
    assert ref2.file_id == "file-abc"  # learned from our own record

    assert isinstance(ref, ArtifactRef) and ref.version is None
    assert ref.name == "legal-train" and ref.qualified_name == f"legal-train:{ref.digest}"
    assert again.digest == ref.digest and again.file_id == "file-abc"
    assert no_online_wandb == []

    back = read_run(run_dir_of(run_id))
    # The fast reader runs exactly what the documented command runs: same JSON.
    assert json.loads(cli_inspect(back.run_dir, "--summary", "--json")) == back.summary_doc
    datasets = [a for a in back.artifacts() if a["type"] == "dataset"]
    assert sorted(a["name"] for a in datasets) == ["legal-test", "legal-train"]  # logged once each
    train = next(a for a in datasets if a["name"] == "legal-train")
    meta = train["metadata"]
    assert meta["sha256"] == ref.digest and meta["split"] == "train" and meta["n_examples"] == 4
    assert meta["label_balance"] == {"No": 2, "Yes": 2}
    assert meta["tokens"] and meta["validation"]["n_examples"] == 4  # from the validator
    assert set(train["aliases"]) == {"latest", ref.digest}
    table = json.loads(staged_file(train, "examples.table.json").read_text())
    assert table["columns"] == COLUMNS and len(table["data"]) == 4
    assert staged_file(train, "legal.jsonl").read_bytes() == path.read_bytes()
    assert examples_ref.metadata["n_examples"] == 2 and examples_ref.metadata["split"] == "test"
    assert meta["local_path"] == str(path.resolve())
    cached = Path(examples_ref.metadata["local_path"])  # a list of examples is kept under FINETUNE_WB_HOME
    assert cached.is_relative_to(os.environ["FINETUNE_WB_HOME"]) and cached.read_bytes() == jsonl(
        training_lines()[:2]
    )

    inputs = back.config["lineage"]["inputs"]
    assert [i["qualified_name"] for i in inputs] == [ref.qualified_name]
    assert inputs[0]["sha256"] == ref.digest and inputs[0]["openai_file_id"] == "file-abc"
    # Our own record: one entry per (type, name, digest), the file id remembered.
    records = {r.name: r for r in recorded_artifacts("dataset")}
    assert set(records) == {"legal-train", "legal-test"} and records["legal-train"].file_id == "file-abc"
    assert len(recorded_artifacts("dataset")) == 2  # one record each, though legal-train was logged by 2 runs
    leaked = files_containing(
        [WANDB_KEY, "azure-secret-key-0123456789", os.environ["OPENAI_API_KEY"]],
        os.environ["WANDB_DIR"],
        os.environ["WANDB_DATA_DIR"],
        os.environ["FINETUNE_WB_HOME"],
    )
    assert leaked == []


def _events(job: FakeJob) -> list[JobEvent]:
    return [JobEvent.from_openai(e, job_id=job.id) for e in reversed(job.events())]


def test_tracker_live_events_then_result_file_on_callers_run(no_online_wandb: list[str]) -> None:
    api = FakeFineTuneAPI()
    job = api.add_job(FakeJob("ftjob-live000001", event_steps=[1, 2, 4], total_steps=6))
    client = api.client()
    run = _init(job_type="fine-tune", name=job.id)
    dataset = ArtifactRef(name="legal-train", type="dataset", digest="d" * 64, file_id="file-train")
    tracker = FineTuneTracker(run, job_id=job.id, datasets=[dataset], estimated_billed_tokens=4000)
    events = _events(job)
    for event in events + events[-2:]:  # a repeated delivery is logged once
        tracker(event)
    final = client.fine_tuning.jobs.retrieve(job.id)
    result = tracker.finalize(final, client=client)
    run.log({"after_finalize": 1})  # the caller's run is still open: the tracker did not finish it
    run.finish()

    assert result.status == "succeeded" and result.steps_from_events == [1, 2, 4]
    assert result.steps_from_result_file == [3, 5, 6] and result.n_checkpoints == 2
    back = read_run(run_dir_of(run.id))
    steps = [row["step"] for row in back.history() if "step" in row]
    assert sorted(steps) == [1, 2, 3, 4, 5, 6] and len(steps) == 6  # no step twice
    by_step = {row["step"]: row for row in back.history() if "step" in row}
    assert by_step[2]["train_mean_token_accuracy"] == pytest.approx(0.52)  # from the event
    # from the result file, whose "train_accuracy" column is the events' train_mean_token_accuracy
    assert by_step[3]["train_mean_token_accuracy"] == pytest.approx(0.53)
    assert all("train_mean_token_accuracy" in row and "train_accuracy" not in row for row in by_step.values())
    assert by_step[5]["valid_loss"] == pytest.approx(0.5)
    assert any(
        m.get("step_metric") == "step" and m.get("name") == "train_loss" for m in back.metric_definitions()
    )

    s = back.summary
    assert s["status"] == "succeeded"
    assert s["fine_tuned_model"] == final.fine_tuned_model and s["trained_tokens"] == 4321
    assert s["billed_tokens"] == 4321 and s["estimated_billed_tokens"] == 4000
    assert s["duration_seconds"] == 120 and s["final_train_loss"] == pytest.approx(2.0 / 6, abs=1e-3)
    assert s["checkpoints"]["nrows"] == 2 and s["total_steps"] == 6
    assert not any("total_steps" in row for row in back.history())
    cfg = back.config
    assert cfg["job_id"] == job.id and cfg["job"]["status"] == "succeeded"
    assert cfg["hyperparameters"] == {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
    assert cfg["lineage"]["inputs"][0]["openai_file_id"] == "file-train"
    assert cfg["lineage"]["outputs"][0]["name"] == f"model-{job.id}"

    model = back.artifact("model")
    meta = model["metadata"]
    assert meta["fine_tuned_model"] == final.fine_tuned_model and meta["base_model"] == job.model
    assert meta["job_id"] == job.id and meta["trained_tokens"] == 4321
    assert meta["hyperparameters"]["n_epochs"] == 3 and meta["final_metrics"]["train_loss"] > 0
    assert meta["checkpoints"] == [
        f"{final.fine_tuned_model}:ckpt-step-3",
        f"{final.fine_tuned_model}:ckpt-step-6",
    ]
    ref = model_ref(job_id=job.id)
    assert ref is not None and ref.metadata["fine_tuned_model"] == final.fine_tuned_model
    assert no_online_wandb == []
    assert (
        files_containing(
            [API_KEY], os.environ["WANDB_DIR"], os.environ["WANDB_DATA_DIR"], os.environ["FINETUNE_WB_HOME"]
        )
        == []
    )


def test_failed_job_run_records_error_and_exits_nonzero(no_online_wandb: list[str]) -> None:
    api = FakeFineTuneAPI()
    job = api.add_job(
        FakeJob(
            "ftjob-failed0001",
            status="failed",
            event_steps=[1],
            error={
                "code": "invalid_training_file",
                "message": "line 3: missing assistant",
                "param": "training_file",
            },
        )
    )
    client = api.client()
    final = client.fine_tuning.jobs.retrieve(job.id)
    # The caller's own error inside the context also ends the run as failed.
    with pytest.raises(RuntimeError), FineTuneTracker.start(final, project="tracking-tests") as tracker:
        for event in _events(job):
            tracker(event)
        result = tracker.finalize(final, client=client)
        assert result.status == "failed" and result.model_artifact is None
        assert result.error == {
            "code": "invalid_training_file",
            "message": "line 3: missing assistant",
            "param": "training_file",
            "status": "failed",
        }
        raise RuntimeError("after finalize: run already finished, exit code stays 1")
    (back,) = read_runs()
    assert back.name == job.id and back.job_type == "fine-tune"
    assert back.exit_code == 1 and back.state == "failed"
    assert back.summary["status"] == "failed" and back.summary["error"]["code"] == "invalid_training_file"
    assert [a["type"] for a in back.artifacts()] == []  # no model for a failed job
    assert no_online_wandb == []


def test_job_failing_inside_with_is_read_back_and_ends_the_run_failed(
    finetune_emulator: Any, no_online_wandb: list[str]
) -> None:
    """`with FineTuneTracker.start(...)`: wait_for_job raises JobFailed; the run still gets the job's end."""
    from finetune_wb.errors import JobFailed
    from finetune_wb.jobs.waiting import wait_for_job

    client = finetune_emulator.client()
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "Yes"}]}
        for i in range(12)
    ]
    file = client.files.create(file=("t.jsonl", jsonl(lines)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    finetune_emulator.fail_job(job.id, code="server_overloaded", message="capacity exhausted, retry later")

    with (
        pytest.raises(JobFailed),
        FineTuneTracker.start(job, project="tracking-tests", client=client) as tracker,
    ):
        final = wait_for_job(job.id, client=client, on_event=tracker, progress=False, poll_interval=0.01)
        tracker.finalize(final)  # never reached
    (back,) = read_runs()
    assert back.name == job.id and back.exit_code == 1 and back.state == "failed"
    assert back.summary["status"] == "failed"  # the job as it ended, not only the exception text
    assert back.summary["error"] == {
        "code": "server_overloaded",
        "message": "capacity exhausted, retry later",
        "status": "failed",
    }
    assert back.config["job"]["status"] == "failed" and no_online_wandb == []


@pytest.mark.parametrize("status", [429, 500])
def test_finalize_by_job_id_retries_a_transient_error(no_online_wandb: list[str], status: int) -> None:
    """``finalize("ftjob-...")`` reads the job through the jobs layer's retried helper (it used to have none)."""
    api = FakeFineTuneAPI()
    job = api.add_job(FakeJob("ftjob-byid000001", event_steps=[]))
    path = f"/v1/fine_tuning/jobs/{job.id}"
    api.fail_once("GET", path, status)
    run = _init(job_type="fine-tune", name=job.id)
    try:
        result = FineTuneTracker(run, job_id=job.id).finalize(job.id, client=api.client())
    finally:
        run.finish()
    assert result.status == "succeeded" and result.steps_from_result_file == [1, 2, 3, 4, 5, 6]
    assert [e[:2] for e in api.journal].count(("GET", path)) == 2 and api.faults == []
