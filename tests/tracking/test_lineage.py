"""Lineage edges online and offline, secret scrubbing, the eval-run hook, runs we did not start."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from finetune_wb._secrets import scrub
from finetune_wb.tracking import ArtifactRef, FineTuneTracker, link_input, start_eval_run
from finetune_wb.tracking.artifacts import remember
from finetune_wb.tracking.mode import _reset_offline_hint, offline_hint
from tests.fakes.finetune_api import FakeFineTuneAPI, FakeJob
from tests.fakes.wandb_readback import read_runs


class FakeConfig(dict):  # type: ignore[type-arg]
    def update(self, values: Any = (), allow_val_change: bool = False, **kw: Any) -> None:  # type: ignore[override]
        super().update(values, **kw)


class FakeRun:
    """Just enough of wandb.Run to see which calls the tracking layer makes."""

    def __init__(self, mode: str) -> None:
        self.settings = type("S", (), {"mode": mode})()
        self.offline = mode == "offline"
        self.id, self.project, self.entity, self.dir = "fake123", "proj", "team", None
        self.config = FakeConfig()
        self.summary: dict[str, Any] = {}
        self.calls: list[tuple[str, Any]] = []

    def use_artifact(self, target: Any, type: str | None = None, **kw: Any) -> Any:
        self.calls.append(("use_artifact", target))
        return target

    def define_metric(self, name: str, step_metric: str | None = None, **kw: Any) -> None:
        self.calls.append(("define_metric", (name, step_metric)))

    def log(self, data: dict[str, Any]) -> None:
        self.calls.append(("log", data))

    def log_artifact(self, artifact: Any, aliases: Any = None) -> None:
        self.calls.append(("log_artifact", artifact))

    def finish(self, exit_code: int = 0) -> None:
        self.calls.append(("finish", exit_code))


def test_scrub_drops_credential_keys_and_redacts_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdef")
    monkeypatch.setenv("WANDB_API_KEY", "wb-0123456789abcdefghij")
    cleaned = scrub(
        {
            "api_key": "sk-live-0123456789abcdef",
            "Authorization": "Bearer x",
            "azure_api_key": "whatever",
            "n_tokens": 5,
            "trained_tokens": 7,
            "note": ["called with sk-live-0123456789abcdef", {"k": "wb-0123456789abcdefghij"}],
        }
    )
    assert cleaned == {
        "n_tokens": 5,
        "trained_tokens": 7,
        "note": ["called with [redacted]", {"k": "[redacted]"}],
    }


def test_link_input_online_uses_use_artifact_and_records_config() -> None:
    run = FakeRun("online")
    versioned = ArtifactRef(
        name="train", type="dataset", digest="a" * 64, version="v3", entity="e", project="p"
    )
    unversioned = ArtifactRef(name="test", type="dataset", digest="b" * 64, file_id="file-1")
    link_input(run, versioned)
    link_input(run, unversioned)
    link_input(run, versioned)  # once per qualified name in config
    assert [c for c in run.calls if c[0] == "use_artifact"] == [
        ("use_artifact", "e/p/train:v3"),
        ("use_artifact", f"team/proj/test:{'b' * 64}"),  # the sha256 alias every version carries
        ("use_artifact", "e/p/train:v3"),
    ]
    inputs = run.config["lineage"]["inputs"]
    assert [i["qualified_name"] for i in inputs] == [f"test:{'b' * 64}", "e/p/train:v3"]
    assert inputs[0]["openai_file_id"] == "file-1"


def test_link_input_offline_never_calls_use_artifact(caplog: pytest.LogCaptureFixture) -> None:
    run = FakeRun("offline")
    link_input(run, ArtifactRef(name="train", type="dataset", digest="c" * 64))
    assert not [c for c in run.calls if c[0] == "use_artifact"]
    assert run.config["lineage"]["inputs"][0]["sha256"] == "c" * 64


def test_online_use_failure_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    run = FakeRun("online")

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("artifact not found")

    run.use_artifact = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="finetune_wb.tracking"):
        link_input(run, ArtifactRef(name="train", type="dataset", digest="d" * 64))
    assert "artifact not found" in caplog.text and run.config["lineage"]["inputs"]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_offline_hint_is_given_once(tmp_path: Path) -> None:
    _reset_offline_hint()
    run = FakeRun("offline")
    run.dir = str(tmp_path / "wandb" / "offline-run-20260101_000000-fake123" / "files")
    # A handler on our own logger: root handlers may carry filters other code added (the demo's).
    collect = _Collect()
    tracking_logger = logging.getLogger("finetune_wb.tracking")
    tracking_logger.addHandler(collect)
    try:
        offline_hint(run)
        offline_hint()
    finally:
        tracking_logger.removeHandler(collect)
    hints = [m for m in collect.messages if "wandb sync" in m]
    assert len(hints) == 1
    # this run, and every offline run next to it (a sync writes one run per job)
    assert f"wandb sync {tmp_path / 'wandb' / 'offline-run-20260101_000000-fake123'}`" in hints[0]
    assert f"wandb sync {tmp_path / 'wandb' / 'offline-run-*'}`" in hints[0]


def test_sync_check_online_asks_wandb_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    from finetune_wb.tracking.synced import is_synced

    queries: list[tuple[str, Any]] = []

    class FakeApi:
        default_entity = "me"

        def runs(self, path: str, filters: Any = None) -> list[Any]:
            queries.append((path, filters))
            done = type("R", (), {"summary": {"status": "succeeded"}})()
            return [done] if filters == {"display_name": "ftjob-online1"} else []

    monkeypatch.setattr(wandb, "Api", FakeApi)
    assert not is_synced("ftjob-online1", project="p")  # offline (conftest): W&B is not asked
    assert queries == []
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "wb-key-for-this-test-only-000")
    assert is_synced("ftjob-online1", project="p")
    assert not is_synced("ftjob-other", project="p", entity="team")
    assert queries == [
        ("me/p", {"display_name": "ftjob-online1"}),
        ("team/p", {"display_name": "ftjob-other"}),
    ]


def test_tracker_on_a_callers_run_records_a_cancelled_job_but_never_finishes_it() -> None:
    api = FakeFineTuneAPI()
    job = api.add_job(FakeJob("ftjob-cancel00001", status="cancelled", event_steps=[1, 2]))
    client = api.client()
    run = FakeRun("offline")
    tracker = FineTuneTracker(run, job_id=job.id)
    result = tracker.finalize(job.id, client=client)  # an id: the tracker retrieves the job itself
    assert result.status == "cancelled" and result.error is not None
    assert run.summary["status"] == "cancelled"
    assert run.summary["error"]["message"] == f"job {job.id} ended with status cancelled"
    assert ("finish", 0) not in run.calls and ("finish", 1) not in run.calls


def test_eval_run_hook_uses_model_and_test_artifacts(tmp_path: Path) -> None:
    model = remember(
        ArtifactRef(
            name="model-ftjob-evalhook1",
            type="model",
            digest="f" * 64,
            metadata={"job_id": "ftjob-evalhook1", "fine_tuned_model": "ft:gpt-4o-mini:org::abc"},
        )
    )
    test = ArtifactRef(name="legal-test", type="dataset", digest="1" * 64, file_id=None)
    run = start_eval_run(
        project="eval-tests", model="ftjob-evalhook1", test_data=test, baseline="gpt-4o-mini"
    )
    run.summary["accuracy"] = 0.9
    run.finish()
    (back,) = read_runs()
    assert back.job_type == "eval" and back.exit_code == 0
    assert back.config["fine_tuned_model"] == "ft:gpt-4o-mini:org::abc"
    assert back.config["baseline_model"] == "gpt-4o-mini"
    names = [i["qualified_name"] for i in back.config["lineage"]["inputs"]]
    assert names == [model.qualified_name, test.qualified_name]


def test_wandb_disabled_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_wb.tracking.mode import init_mode
    from finetune_wb.tracking.sync import sync_job
    from finetune_wb.tracking.synced import synced_record

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert init_mode() == "disabled"  # never turned into an offline run behind the user's back
    api = FakeFineTuneAPI()
    job = api.add_job(FakeJob("ftjob-disabled01"))
    result = sync_job(job.id, project="p", client=api.client())
    assert result.outcome == "failed" and "WANDB_MODE=disabled" in (result.error or "")
    from finetune_wb.errors import ConfigError
    from finetune_wb.tracking.sync import sync_jobs

    with pytest.raises(ConfigError, match="WANDB_MODE=disabled"):  # one error, no job listing
        sync_jobs(project="p", client=api.client())
    assert api.journal == [] and synced_record(project="p") == {} and read_runs() == []


def test_log_messages_never_carry_a_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import finetune_wb.tracking  # noqa: F401  (installs the filters)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-in-an-exception-0123456789")
    with caplog.at_level(logging.WARNING):
        logging.getLogger("finetune_wb.tracking.sync").error(
            "failed: %s", RuntimeError("bad key sk-in-an-exception-0123456789")
        )
    assert "sk-in-an-exception" not in caplog.text and "[redacted]" in caplog.text


def test_offline_hint_reaches_a_script_that_never_configured_logging(tmp_path: Path) -> None:
    """The package installs a NullHandler; a plain script must still be told how to upload later."""
    import subprocess
    import sys

    code = "from finetune_wb.tracking.mode import offline_hint\noffline_hint()\noffline_hint()\n"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("wandb sync") == 2 and proc.stderr.count("finetune_wb: W&B is offline") == 1
    assert f"wandb sync {tmp_path / 'wandb' / 'offline-run-*'}`" in proc.stderr


def test_online_model_artifact_is_found_from_an_eval_run_in_another_project() -> None:
    from finetune_wb.tracking import log_model

    ft_run = FakeRun("online")
    ft_run.project = "fine-tunes"
    job = {"id": "ftjob-online-model1", "model": "gpt-4o-mini", "fine_tuned_model": "ft:gpt-4o-mini:o::x"}
    ref = log_model(ft_run, job, final_metrics={"train_loss": 0.1})
    assert (ref.entity, ref.project) == ("team", "fine-tunes")
    eval_run = FakeRun("online")
    eval_run.project = "evals"
    link_input(eval_run, ref)
    assert [c[1] for c in eval_run.calls if c[0] == "use_artifact"] == [
        f"team/fine-tunes/model-ftjob-online-model1:{ref.digest}"
    ]


def test_online_dataset_without_a_version_yet_keeps_its_project(tmp_path: Path) -> None:
    from finetune_wb.tracking import log_dataset

    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    data_run = FakeRun("online")
    data_run.project = "data"
    ref = log_dataset(path, run=data_run, split="train", validate=False)  # W&B gave no version (fake run)
    assert ref.version is None and (ref.entity, ref.project) == ("team", "data")
    eval_run = FakeRun("online")
    link_input(eval_run, ref)
    assert [c[1] for c in eval_run.calls if c[0] == "use_artifact"] == [f"team/data/train-train:{ref.digest}"]


def test_finalize_of_an_unknown_job_id_says_which_and_what_to_do() -> None:
    from finetune_wb.errors import JobError

    run = FakeRun("offline")
    tracker = FineTuneTracker(run, job_id="ftjob-unknown0001")
    with pytest.raises(JobError) as info:
        tracker.finalize("ftjob-unknown0001", client=FakeFineTuneAPI().client())
    assert info.value.job_id == "ftjob-unknown0001"
    assert "could not read job ftjob-unknown0001 back" in str(info.value)
    assert "finetune-wb jobs" in str(info.value)  # what to do: check the id
    assert not [c for c in run.calls if c[0] == "finish"]  # the caller's run is left alone
