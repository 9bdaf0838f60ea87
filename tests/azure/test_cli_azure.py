"""The Azure chain step by step from the CLI (upload -> train -> wait -> deploy -> eval -> undeploy), the
location/token contract of deploy/undeploy, pause/resume, providers --json and train --provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.azure.helpers import arm_requests, fine_tuned_model
from tests.fakes.emulator_helpers import yes_no_examples


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def azure_cli(azure_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment of an Azure user: data plane through AzureOpenAI, management through the emulator."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure_env.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    return azure_env


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_chain_step_by_step(azure_cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emu = azure_cli
    train = _write(tmp_path / "train.jsonl", yes_no_examples(20))
    test = _write(tmp_path / "test.jsonl", yes_no_examples(10))
    code, out, err = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(train),
        "--provider", "azure", "--training-type", "developerTier", "--epochs", "2", "--wait", "--no-progress",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    model = job["fine_tuned_model"]
    assert ".ft-" in model and emu.job(job["id"])["trainingType"] == "developerTier"

    code, out, err = _run(capsys, "deploy", model, "--name", "cli-dep", "--json", "--poll-interval", "0.02")
    assert code == 0, err
    dep = json.loads(out)
    assert (dep["name"], dep["model"], dep["state"], dep["sku"]) == (
        "cli-dep",
        model,
        "Succeeded",
        "DeveloperTier",
    )
    assert dep["hosting_usd_per_hour"] == 0.0 and dep["reused"] is False
    code, out, err = _run(capsys, "deploy", model, "--name", "cli-dep")  # a re-run deploys nothing
    assert code == 0 and out.strip() == "cli-dep" and "re-using" in err
    assert arm_requests(emu, "PUT", "cli-dep") == 1

    code, out, err = _run(
        capsys, "eval", "--data", str(test), "--model", "cli-dep", "gpt-4o-mini", "--no-cache", "--no-progress",
        "--json", "--max-tokens", "5",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["cli-dep"]["exact_match"] > metrics["gpt-4o-mini"]["exact_match"]

    code, out, err = _run(capsys, "undeploy", "cli-dep", "--json")
    assert code == 0 and json.loads(out) == {"name": "cli-dep", "deleted": True, "account": "acct-1"}
    code, _, err = _run(capsys, "undeploy", "cli-dep")
    assert code == 0 and "did not exist" in err


def test_deploy_failures_and_exit_codes(
    azure_cli: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = azure_cli
    model = fine_tuned_model(emu)
    code, _, err = _run(
        capsys,
        "deploy",
        model,
        "--name",
        "x",
        "--resource-group",
        "",
        "--account",
        "",
        "--poll-interval",
        "0.02",
    )
    assert code == 0  # empty flags fall back to the environment
    monkeypatch.delenv("AZURE_OPENAI_ACCOUNT")
    code, _, err = _run(capsys, "deploy", model, "--name", "y")
    assert code == 2 and "--account or AZURE_OPENAI_ACCOUNT" in err
    code, _, err = _run(
        capsys,
        "deploy",
        model,
        "--name",
        "y",
        "--account",
        "acct-1",
        "--sku",
        "standard",
        "--poll-interval",
        "0.02",
    )
    assert code == 0 and "$1.70/hour" in err
    other = fine_tuned_model(emu, n=14)
    code, _, err = _run(capsys, "deploy", other, "--name", "y", "--account", "acct-1")
    assert code == 1 and "already serves" in err
    emu.fail_next_deployment("Model capacity is exhausted.")
    code, _, err = _run(
        capsys, "deploy", other, "--name", "z", "--account", "acct-1", "--poll-interval", "0.02"
    )
    assert code == 1 and "ended Failed: Model capacity is exhausted" in err
    monkeypatch.delenv("AZURE_MANAGEMENT_TOKEN")
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    code, _, err = _run(capsys, "undeploy", "z", "--account", "acct-1")
    assert code == 2 and "AZURE_MANAGEMENT_TOKEN" in err
    code, _, err = _run(
        capsys,
        "deploy",
        model,
        "--name",
        "w",
        "--account",
        "acct-1",
        "--management-url",
        "http://127.0.0.1:9",
    )
    assert code in (1, 2)


def test_pause_and_resume(azure_cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emu = azure_cli
    emu.pace = 0.5  # slow enough to catch it running
    client = emu.azure_client()
    file = client.files.create(
        file=("t.jsonl", _write(tmp_path / "t.jsonl", yes_no_examples(20)).read_bytes()), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    import time

    deadline = time.monotonic() + 30
    while client.fine_tuning.jobs.retrieve(job.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, out, err = _run(capsys, "pause", job.id)
    assert code == 0 and out.strip() == f"{job.id}: paused", err
    code, out, _ = _run(capsys, "pause", job.id, "--json")  # pausing again changes nothing
    assert code == 0 and json.loads(out)["status"] == "paused"
    code, out, _ = _run(capsys, "resume", job.id)
    assert code == 0 and out.strip() == f"{job.id}: running"
    code, _, err = _run(capsys, "resume", "ftjob-nope")
    assert code == 1 and "ftjob-nope" in err
    client.fine_tuning.jobs.cancel(job.id)


def test_providers_json_and_train_provider_refusals(
    finetune_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "providers", "--json")
    assert code == 0
    profiles = {p["name"]: p for p in json.loads(out)["providers"]}
    assert set(profiles) == {"openai", "azure", "bedrock", "nebius", "generic"}
    assert profiles["bedrock"]["refused"]["suffix"] and profiles["azure"]["deploy_step"] is True
    code, out, _ = _run(capsys, "providers")
    assert code == 0 and "bedrock: Amazon Bedrock" in out

    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    train = _write(tmp_path / "train.jsonl", yes_no_examples(12))
    base = ["train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(train)]
    code, _, err = _run(capsys, *base, "--provider", "bedrock")
    assert code == 2 and "refuses this job's method" in err
    code, _, err = _run(capsys, *base, "--provider", "nebius", "--learning-rate-multiplier", "2")
    assert code == 2 and "--learning-rate-multiplier" in err and "learning_rate" in err
    code, _, err = _run(capsys, *base, "--provider", "openai", "--training-type", "standard")
    assert code == 2 and "--training-type" in err
    code, _, err = _run(capsys, *base, "--provider", "nosuch")
    assert code == 2 and "unknown provider 'nosuch'" in err
    assert not [e for e in finetune_emulator.journal if e.method == "POST"]  # nothing uploaded, no job
    code, out, err = _run(capsys, *base, "--provider", "generic", "--suffix", "ok")
    assert code == 0 and out.strip().startswith("ftjob-"), err


def test_train_after_openai_end_of_jobs_points_at_azure(
    finetune_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import datetime as dt

    from finetune_wb.providers import preflight_checks

    monkeypatch.setattr(preflight_checks, "_today", lambda: dt.date(2027, 2, 1))
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    train = _write(tmp_path / "train.jsonl", yes_no_examples(12))
    argv = [
        "train",
        "--model",
        "gpt-4o-mini-2024-07-18",
        "--training-file",
        str(train),
        "--provider",
        "openai",
    ]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "OpenAI takes no new fine-tuning jobs since 2027-01-06" in err
    assert "--provider azure" in err and "same JobSpec" in err
    assert not [e for e in finetune_emulator.journal if e.method == "POST"]  # nothing uploaded


def test_emulator_command_serves_azure_on_one_port(tmp_path: Path) -> None:
    import httpx

    exe = str(Path(sys.executable).with_name("finetune-wb"))
    proc = subprocess.Popen(
        [exe, "emulator", "--flavour", "azure", "--port", "0", "--pace", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith("/v1")
        arm = f"{url}/subscriptions/s/resourceGroups/r/providers/Microsoft.CognitiveServices/accounts/a/deployments"
        r = httpx.get(f"{arm}/none?api-version=2024-10-01", headers={"Authorization": "Bearer t"}, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "DeploymentNotFound"
        r = httpx.get(f"{url}/openai/v1/models", headers={"api-key": "k"}, timeout=10)
        assert r.status_code == 200 and r.json()["data"]
        r = httpx.get(f"{url}/openai/models?api-version=2024-10-21", headers={"api-key": "k"}, timeout=10)
        assert r.status_code == 200
        r = httpx.get(f"{url}/openai/models", headers={"api-key": "k"}, timeout=10)
        assert r.status_code == 404 and "api-version" in r.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
