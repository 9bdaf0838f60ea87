"""sync_job / sync_jobs / `finetune-wb sync` against a paged fake API and the emulator, W&B offline."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from finetune_wb.tracking import ArtifactRef
from finetune_wb.tracking.artifacts import remember
from finetune_wb.tracking.sync import SyncReport, sync_job, sync_jobs
from finetune_wb.tracking.synced import is_synced, synced_record
from tests.fakes.finetune_api import API_KEY, FakeFineTuneAPI, FakeJob, dpo_lines, jsonl, training_lines
from tests.fakes.wandb_readback import files_containing, read_runs, staged_file

WANDB_KEY = "wandb-secret-key-zyxwvutsrqponm9876543210"
PROJECT = "sync-tests"


class BrokenEventsAPI(FakeFineTuneAPI):
    """Events of one job answer 400 (not retried): that job's sync fails, the others go on."""

    def handle(self, request: Any) -> Any:
        import httpx

        if request.url.path.endswith("/ftjob-broken00006/events"):
            return httpx.Response(
                400,
                json={"error": {"message": "events unavailable", "type": "x", "param": None, "code": None}},
            )
        return super().handle(request)


def test_sync_jobs_all_pages_skips_synced_keeps_going(
    no_online_wandb: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    api = BrokenEventsAPI(
        files={
            "file-train": jsonl(training_lines() + dpo_lines()),
            "file-valid": jsonl(training_lines()[:2]),
        }
    )
    a = api.add_job(FakeJob("ftjob-synced00001", event_steps=[1, 2]))
    b = api.add_job(
        FakeJob(
            "ftjob-failed00002",
            status="failed",
            event_steps=[1],
            error={"code": "invalid_file", "message": "line 2 has no assistant message", "param": None},
        )
    )
    c = api.add_job(FakeJob("ftjob-running0003", status="running"))
    d = api.add_job(FakeJob("ftjob-nofile00004", training_file="file-deleted", validation_file=None))
    e = api.add_job(
        FakeJob("ftjob-shared00005", training_file="file-shared", validation_file=None, event_steps=[])
    )
    f = api.add_job(FakeJob("ftjob-broken00006"))
    client = api.client()
    # e's training file was logged on this machine before (e.g. by a session): sync links it, no download.
    shared = remember(ArtifactRef(name="legal-train", type="dataset", digest="e" * 64, file_id="file-shared"))

    import wandb

    caller = wandb.init(project="callers-own", reinit="create_new")  # must survive the sync untouched
    first = sync_job(a.id, project=PROJECT, client=client)
    assert first.outcome == "synced" and is_synced(a.id, project=PROJECT)

    report = sync_jobs(project=PROJECT, client=client, page_size=2)
    caller.log({"still_open": 1})
    caller.finish()

    outcomes = {r.job_id: r.outcome for r in report.results}
    assert outcomes == {
        f.id: "failed",
        e.id: "synced",
        d.id: "synced",
        c.id: "not_finished",
        b.id: "synced",
        a.id: "already_synced",
    }
    assert [r.job_id for r in report.results] == [f.id, e.id, d.id, c.id, b.id, a.id]  # newest first
    assert not report.ok and report.counts == {
        "failed": 1,
        "synced": 3,
        "not_finished": 1,
        "already_synced": 1,
    }
    broken = next(r for r in report.results if r.job_id == f.id)
    assert "events unavailable" in (broken.error or "")
    # every page was read: 6 jobs in pages of 2
    job_pages = [q for (m, p, q) in api.journal if p == "/v1/fine_tuning/jobs"]
    assert [q.get("after") for q in job_pages] == [None, e.id, c.id]
    assert not any(p == "/v1/files/file-shared/content" for (_, p, _) in api.journal)
    assert set(synced_record(project=PROJECT)) == {
        a.id,
        b.id,
        d.id,
        e.id,
    }  # not the failed sync nor running job

    runs = {r.name: r for r in read_runs() if r.summary_doc.get("project") == PROJECT}
    assert set(runs) == {a.id, b.id, d.id, e.id, f.id}
    assert all(r.job_type == "fine-tune" for r in runs.values())

    ra = runs[a.id]
    assert ra.exit_code == 0 and ra.summary["status"] == "succeeded"
    assert ra.config["spec"]["n_epochs"] == 3 and ra.config["spec"]["metadata"] == {"team": "legal"}
    steps = sorted(row["step"] for row in ra.history() if "step" in row)
    assert steps == [1, 2, 3, 4, 5, 6]  # 1-2 from events, 3-6 from the result file
    datasets = {x["metadata"]["split"]: x for x in ra.artifacts() if x["type"] == "dataset"}
    assert set(datasets) == {"train", "validation"}
    train = datasets["train"]
    assert train["name"] == "train-file-train" and train["metadata"]["openai_file_id"] == "file-train"
    assert train["metadata"]["formats"] == {"chat": 4, "dpo": 1}
    table = json.loads(staged_file(train, "examples.table.json").read_text())
    assert [row[1] for row in table["data"]] == ["chat", "chat", "chat", "chat", "dpo"]
    assert [row[2] for row in table["data"]] == [2, 3, 5, 4, 1]  # any number of messages
    assert staged_file(train, "file-train.jsonl").read_bytes() == jsonl(training_lines() + dpo_lines())
    inputs = {i["openai_file_id"] for i in ra.config["lineage"]["inputs"]}
    assert inputs == {"file-train", "file-valid"}
    assert ra.artifact("model")["metadata"]["job_id"] == a.id

    rb = runs[b.id]
    assert rb.exit_code == 1 and rb.state == "failed" and rb.summary["status"] == "failed"
    assert rb.summary["error"]["message"] == "line 2 has no assistant message"
    assert runs[d.id].summary["unavailable_files"] == ["file-deleted"] and runs[d.id].exit_code == 0
    re_ = runs[e.id]
    assert re_.config["lineage"]["inputs"][0]["qualified_name"] == shared.qualified_name
    assert sorted(row["step"] for row in re_.history() if "step" in row) == [1, 2, 3, 4, 5, 6]
    rf = runs[f.id]
    assert rf.exit_code == 1 and "events unavailable" in rf.summary["error"]["message"]

    (callers,) = [r for r in read_runs() if r.summary_doc.get("project") == "callers-own"]
    assert callers.exit_code == 0 and callers.summary["still_open"] == 1

    assert no_online_wandb == []
    assert any(API_KEY in h for h in api.authorizations)  # the key was really used...
    roots = [os.environ[v] for v in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "FINETUNE_WB_HOME")]
    assert files_containing([API_KEY, WANDB_KEY], *roots) == []  # ...and is nowhere on disk


def test_cli_sync_ids_exit_codes_and_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_online_wandb: list[str]
) -> None:
    from finetune_wb.cli import main, sync as cli_sync

    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-clijob00001", event_steps=[1, 2, 3, 4, 5, 6]))
    monkeypatch.setattr(cli_sync, "client_from_env", lambda: api.client())
    monkeypatch.setenv("WANDB_PROJECT", "cli-project")
    monkeypatch.setenv("WANDB_ENTITY", "cli-team")

    assert main(["sync", "--id", job.id]) == 0
    out = capsys.readouterr()
    assert job.id in out.out and "synced" in out.out and "cli-team/cli-project" in out.err

    assert main(["sync", "--id", job.id, "--id", "ftjob-doesnotexist", "--json"]) == 1
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["ok"] is False and as_json["counts"] == {"already_synced": 1, "failed": 1}
    report = SyncReport.model_validate(as_json)
    assert [r.outcome for r in report.results] == ["already_synced", "failed"]
    assert "ftjob-doesnotexist" in (report.results[1].error or "")

    assert main(["sync", "--limit", "5", "--json"]) == 0  # all jobs: the only one is already synced
    assert json.loads(capsys.readouterr().out)["counts"] == {"already_synced": 1}
    (run,) = read_runs()  # one run in total: nothing was synced twice
    assert run.name == job.id and run.summary_doc["project"] == "cli-project"
    assert run.summary_doc["entity"] == "cli-team"

    # --overwrite writes the job again, as a new run, and the record points at it
    assert main(["sync", "--id", job.id, "--overwrite", "--json"]) == 0
    (again,) = json.loads(capsys.readouterr().out)["results"]
    assert again["outcome"] == "synced" and again["run_id"] != run.summary_doc["run_id"]
    assert [r.name for r in read_runs()] == [job.id, job.id]
    assert synced_record(project="cli-project")[job.id]["run_id"] == again["run_id"]


def test_live_tracking_on_the_emulator_then_sync_skips_it(
    finetune_emulator: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real chain: upload, create, wait_for_job(on_event=tracker), finalize; then sync sees it done."""
    from finetune_wb.jobs.operations import create_job
    from finetune_wb.jobs.upload import upload_file
    from finetune_wb.jobs.waiting import wait_for_job
    from finetune_wb.schema import JobSpec
    from finetune_wb.tracking import FineTuneTracker, log_dataset

    client = finetune_emulator.client()
    lines = [
        {
            "messages": [
                {"role": "system", "content": "Answer Yes or No."},
                {"role": "user", "content": f"Clause {i} mentions topic {i % 4}. Explicit?"},
                {"role": "assistant", "content": "Yes" if i % 3 else "No"},
            ]
        }
        for i in range(12)
    ]
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(lines))
    file = upload_file(path, client=client)
    spec = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=1)
    job = create_job(spec, training_file=file.id, client=client)

    import wandb

    data_run = wandb.init(project=PROJECT, job_type="prepare", reinit="create_new")
    ref = log_dataset(path, run=data_run, split="train", file_id=file.id)
    data_run.finish()
    tracker = FineTuneTracker.start(job, project=PROJECT, spec=spec, datasets=[ref])
    final = wait_for_job(job.id, client=client, on_event=tracker, progress=False, poll_interval=0.05)
    tracked = tracker.finalize(final, client=client)
    assert tracked.status == "succeeded" and tracked.model_artifact is not None

    result = sync_job(job.id, project=PROJECT, client=client)
    assert result.outcome == "already_synced"
    # The command, configured only by the environment, agrees (and writes nothing).
    from finetune_wb.cli import main

    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-emulator-cli-key-0123456789")
    monkeypatch.setenv("WANDB_PROJECT", PROJECT)
    capsys.readouterr()
    assert main(["sync", "--json"]) == 0
    cli_report = json.loads(capsys.readouterr().out)
    assert [(r["job_id"], r["outcome"]) for r in cli_report["results"]] == [(job.id, "already_synced")]

    runs = {r.job_type: r for r in read_runs()}
    ft = runs["fine-tune"]
    steps = [row["step"] for row in ft.history() if "step" in row]
    assert sorted(steps) == list(range(1, 13)) and len(set(steps)) == len(steps)
    assert tracked.steps_from_events  # live events arrived through wait_for_job
    assert ft.config["spec"]["n_epochs"] == 1 and ft.config["job"]["training_file"] == file.id
    assert ft.config["lineage"]["inputs"][0]["sha256"] == ref.digest
    assert ft.summary["fine_tuned_model"] == final.fine_tuned_model
    # The estimate: billed tokens per epoch (validator) x the epochs the job ran (1, not the default 8).
    assert ref.metadata["estimated_billed_tokens"] != ref.metadata["tokens"]["billed_per_epoch"]
    assert ft.summary["estimated_billed_tokens"] == ref.metadata["tokens"]["billed_per_epoch"]
    assert ft.summary["billed_tokens"] == final.trained_tokens
    assert ft.artifact("model")["metadata"]["checkpoints"]
    assert len(read_runs()) == 2  # the data run and the fine-tune run: sync added none
    roots = [os.environ[v] for v in ("WANDB_DIR", "WANDB_DATA_DIR", "FINETUNE_WB_HOME")]
    assert files_containing(["sk-emulator-cli-key-0123456789"], *roots) == []


def test_sync_wait_follows_a_running_job_live(
    finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`finetune-wb sync --id JOB --wait`: a job still running gets its run now and is followed to the end."""
    from finetune_wb.cli import main, sync as cli_sync

    finetune_emulator.pace = 0.2  # slow enough to be caught running (the fixture resets it per test)
    client = finetune_emulator.client()
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": "Yes" if i % 2 else "No"},
            ]
        }
        for i in range(12)
    ]
    file = client.files.create(file=("t.jsonl", jsonl(lines)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    assert job.status not in ("succeeded", "failed", "cancelled")
    assert sync_job(job.id, project=PROJECT, client=client).outcome == "not_finished"  # nothing written

    monkeypatch.setattr(cli_sync, "client_from_env", lambda: client)
    monkeypatch.setattr(
        "finetune_wb.tracking.sync.sync_job.__kwdefaults__",
        {**sync_job.__kwdefaults__, "poll_interval": 0.05},
    )
    assert main(["sync", "--id", job.id, "--wait", "--project", PROJECT, "--json"]) == 0
    (run,) = read_runs()
    assert run.name == job.id and run.exit_code == 0 and run.summary["status"] == "succeeded"
    steps = [row["step"] for row in run.history() if "step" in row]
    assert max(steps) >= 12 and sorted(steps) == list(range(1, max(steps) + 1))  # every step, once
    assert is_synced(job.id, project=PROJECT)


def _dpo_records(n: int) -> list[dict[str, Any]]:
    """DPO records of several shapes: a system message, a multi-turn input, tools on one of them."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"Greet visitor {i}"}]
        if i % 3 == 0:
            messages = [
                {"role": "system", "content": "Be polite."},
                {"role": "user", "content": "Hello?"},
                {"role": "assistant", "content": "Yes?"},
                *messages,
            ]
        record: dict[str, Any] = {
            "input": {"messages": messages},
            "preferred_output": [{"role": "assistant", "content": f"Welcome, visitor {i}!"}],
            "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
        }
        if i == 1:
            record["input"]["tools"] = [
                {"type": "function", "function": {"name": "lookup", "parameters": {}}}
            ]
        out.append(record)
    return out


def test_dpo_job_synced_from_the_emulator_with_wait_for_all_jobs(
    finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DPO job started elsewhere, still running: `finetune-wb sync --wait` follows it, then reads it back."""
    from finetune_wb.cli import main

    finetune_emulator.pace = 0.2  # slow enough to be caught running
    client = finetune_emulator.client()
    records = _dpo_records(12)
    file = client.files.create(file=("prefs.jsonl", jsonl(records)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18",
        training_file=file.id,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 2}}},
    )
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-emulator-dpo-key-0123456789")
    monkeypatch.setenv("WANDB_PROJECT", PROJECT)

    # Without --wait a running job is skipped with a note saying how to sync it; nothing is written.
    assert main(["sync", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["results"]
    assert item["outcome"] == "not_finished" and "--wait" in item["message"] and read_runs() == []
    # --limit counts jobs; it must be a positive number.
    with pytest.raises(SystemExit) as exited:
        main(["sync", "--limit", "0"])
    assert exited.value.code == 2 and "must be 1 or more" in capsys.readouterr().err

    monkeypatch.setattr(
        "finetune_wb.tracking.sync.sync_jobs.__kwdefaults__",
        {**sync_jobs.__kwdefaults__, "poll_interval": 0.05},
    )
    assert main(["sync", "--wait", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["results"]
    assert item["outcome"] == "synced" and item["job_status"] == "succeeded"

    final = client.fine_tuning.jobs.retrieve(job.id)
    (run,) = read_runs()
    assert run.name == job.id and run.job_type == "fine-tune" and run.exit_code == 0
    assert run.config["method"] == "dpo" and run.config["hyperparameters"]["beta"] == 0.2
    spec = run.config["spec"]  # a job started elsewhere: the JobSpec it amounts to
    assert (spec["method"], spec["beta"], spec["n_epochs"], spec["model"]) == ("dpo", 0.2, 2, final.model)
    steps = [row["step"] for row in run.history() if "step" in row]
    assert sorted(steps) == list(range(1, max(steps) + 1))  # every step once, events and result file
    assert {"name": "train_loss", "step_metric": "step"}.items() <= next(
        m for m in run.metric_definitions() if m.get("name") == "train_loss"
    ).items()

    data = run.artifact("dataset")
    meta = data["metadata"]
    assert meta["format"] == "dpo" and meta["n_examples"] == 12 and meta["openai_file_id"] == file.id
    assert meta["messages_per_example"] == {"min": 1, "mean": 2.0, "max": 4} and meta["n_with_tools"] == 1
    table = json.loads(staged_file(data, "examples.table.json").read_text())
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
    assert [r["format"] for r in rows] == ["dpo"] * 12
    assert (
        rows[0]["system"] == "Be polite."
        and rows[0]["prompt"] == "user: Hello?\nassistant: Yes?\nuser: Greet visitor 0"
    )
    assert (rows[1]["completion"], rows[1]["rejected"], rows[1]["tools"]) == (
        "Welcome, visitor 1!",
        "Go away.",
        "lookup",
    )

    model = run.artifact("model")["metadata"]
    assert model["method"] == "dpo" and model["hyperparameters"]["beta"] == 0.2
    assert model["fine_tuned_model"] == final.fine_tuned_model and model["job_id"] == job.id
    assert model["trained_tokens"] == final.trained_tokens and model["checkpoints"]
    s = run.summary
    assert s["status"] == "succeeded" and s["trained_tokens"] == final.trained_tokens
    # estimated = billed tokens per epoch (validator, on the downloaded file) x the job's 2 epochs
    assert s["estimated_billed_tokens"] == meta["tokens"]["billed_per_epoch"] * 2
    assert s["duration_seconds"] == final.finished_at - final.created_at


def test_interrupted_sync_ends_its_run_failed_and_is_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-interrupt001"))

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("finetune_wb.tracking.sync.job_events", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sync_job(job.id, project=PROJECT, client=api.client())
    (run,) = read_runs()
    assert run.exit_code == 1 and run.state == "failed"
    assert "interrupted" in run.summary["error"]["message"]
    assert not is_synced(job.id, project=PROJECT)  # the next sync tries again


def test_identical_bytes_under_another_file_id_make_no_new_dataset_version() -> None:
    """The same training data uploaded twice (two file ids): the second job's run links the first artifact."""
    data = jsonl(training_lines())
    api = FakeFineTuneAPI(files={"file-first": data, "file-again": data})
    one = api.add_job(FakeJob("ftjob-samebytes001", training_file="file-first", validation_file=None))
    two = api.add_job(FakeJob("ftjob-samebytes002", training_file="file-again", validation_file="file-first"))
    client = api.client()
    assert sync_job(one.id, project=PROJECT, client=client).outcome == "synced"
    assert sync_job(two.id, project=PROJECT, client=client).outcome == "synced"

    runs = {r.name: r for r in read_runs()}
    (logged,) = [a for a in runs[one.id].artifacts() if a["type"] == "dataset"]
    assert [a for a in runs[two.id].artifacts() if a["type"] == "dataset"] == []  # nothing logged again
    inputs = runs[two.id].config["lineage"]["inputs"]
    assert {i["sha256"] for i in inputs} == {logged["metadata"]["sha256"]}
    assert {i["name"] for i in inputs} == {logged["name"]}
    assert ("GET", "/v1/files/file-again/content", {}) in api.journal  # read once to learn its digest


def test_unwritable_state_dir_is_an_error_that_names_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finetune_wb.cli import main, sync as cli_sync

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("FINETUNE_WB_HOME", str(blocker / "home"))
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    api.add_job(FakeJob("ftjob-nohome00001"))
    monkeypatch.setattr(cli_sync, "client_from_env", lambda: api.client())
    assert main(["sync", "--project", PROJECT]) == 1
    err = capsys.readouterr().err
    assert "error: cannot write finetune_wb's local records under" in err and str(blocker) in err
    assert "set FINETUNE_WB_HOME to a writable directory" in err and "Traceback" not in err


def test_cli_wait_shows_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from finetune_wb.cli import main, sync as cli_sync

    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-progress0001", status="running"))
    seen: list[bool] = []

    def fake_wait(job_id: str, *, progress: bool, client: Any, **kwargs: Any) -> Any:
        seen.append(progress)
        job.status = "succeeded"
        api.files[f"file-result-{job.id}"] = b""
        return client.fine_tuning.jobs.retrieve(job_id)

    monkeypatch.setattr("finetune_wb.jobs.waiting.wait_for_job", fake_wait)
    monkeypatch.setattr(cli_sync, "client_from_env", lambda: api.client())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["sync", "--id", job.id, "--wait", "--project", PROJECT]) == 0
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    job.status = "running"
    assert main(["sync", "--id", job.id, "--wait", "--overwrite", "--project", PROJECT, "--json"]) == 0
    assert seen == [True, False]


@pytest.mark.parametrize("status", [429, 500])
def test_sync_rides_out_a_transient_error_reading_the_job_and_its_events(status: int) -> None:
    """sync reads the job and its events through the jobs layer's one retried helpers."""
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-transient001", event_steps=[1, 2]))
    path = f"/v1/fine_tuning/jobs/{job.id}"
    api.fail_once("GET", path, status)
    api.fail_once("GET", f"{path}/events", status)
    result = sync_job(job.id, project=PROJECT, client=api.client())  # the client itself never retries
    assert result.outcome == "synced" and result.job_status == "succeeded" and api.faults == []
    assert len([e for e in api.journal if e[:2] == ("GET", path)]) == 2
    (run,) = read_runs()
    assert sorted(row["step"] for row in run.history() if "step" in row) == [1, 2, 3, 4, 5, 6]


def test_a_job_that_ended_while_followed_live_is_read_back_with_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wait=True: the job fails while followed; reading it back (a 500 first) still records its error."""
    from finetune_wb.errors import JobFailed

    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    job = api.add_job(FakeJob("ftjob-endslive001", status="running", event_steps=[1]))
    path = f"/v1/fine_tuning/jobs/{job.id}"

    def failing_wait(job_id: str, **kwargs: Any) -> Any:
        job.status, job.error = "failed", {"code": "oom", "message": "ran out of memory", "param": None}
        api.fail_once("GET", path, 500)
        raise JobFailed(f"fine-tuning job {job_id} failed", job_id=job_id)

    monkeypatch.setattr("finetune_wb.jobs.waiting.wait_for_job", failing_wait)
    result = sync_job(job.id, project=PROJECT, client=api.client(), wait=True)
    assert result.outcome == "synced" and result.job_status == "failed" and api.faults == []
    (run,) = read_runs()
    assert run.exit_code == 1 and run.summary["error"]["code"] == "oom"
