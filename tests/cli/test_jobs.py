"""`finetune-wb upload/train/status/wait/cancel/jobs` against the emulator, through OPENAI_BASE_URL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main


@pytest.fixture
def emu(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def _train_file(tmp_path: Path, n: int = 14, *, broken: bool = False) -> Path:
    path = tmp_path / "train.jsonl"
    lines = []
    for i in range(n):
        messages = [
            {"role": "user", "content": f"Is clause {i} about confidentiality?"},
            {"role": "assistant", "content": "Yes" if i % 2 else "No"},
        ]
        if broken and i == 3:
            messages = messages[:1]
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_upload_prints_the_id_and_reuses_it(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_file(tmp_path)
    code, out, _ = _run(capsys, "upload", str(path))
    assert code == 0 and out.strip().startswith("file-")
    code, out2, _ = _run(capsys, "upload", str(path), "--json")
    assert code == 0 and json.loads(out2)["id"] == out.strip()
    assert sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/files") == 1


def test_upload_refuses_invalid_and_missing_files(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "upload", str(_train_file(tmp_path, broken=True)))
    assert code == 1 and "validator found" in err
    code, _, err = _run(capsys, "upload", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err
    assert not any(e.method == "POST" for e in emu.journal)


def test_train_wait_json_then_status_jobs_and_metrics(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_file(tmp_path)
    code, out, err = _run(
        capsys,
        "train",
        "--model",
        "gpt-4o-mini-2024-07-18",
        "--training-file",
        str(path),
        "--epochs",
        "2",
        "--suffix",
        "cli-test",
        "--metadata",
        "team=legal",
        "--wait",
        "--json",
        "--no-progress",
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "succeeded" and job["fine_tuned_model"]
    assert job["metadata"]["team"] == "legal" and job["hyperparameters"]["n_epochs"] == 2

    code, out, _ = _run(capsys, "status", job["id"], "--json")
    assert code == 0 and json.loads(out)["id"] == job["id"]
    code, out, _ = _run(capsys, "status", job["id"])
    assert code == 0 and job["id"] in out and "succeeded" in out

    code, out, _ = _run(capsys, "jobs", "--json", "--metadata", "team=legal", "--status", "succeeded")
    assert code == 0 and [j["id"] for j in json.loads(out)] == [job["id"]]
    code, out, _ = _run(capsys, "jobs", "--metadata", "team=other")
    assert code == 0 and out == ""


def test_train_without_wait_then_wait_prints_events(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "upload", str(_train_file(tmp_path)))
    file_id = out.strip()
    code, out, _ = _run(capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", file_id)
    job_id = out.strip()
    assert code == 0 and job_id.startswith("ftjob-")
    code, out, err = _run(capsys, "wait", job_id, "--poll-interval", "0.01")
    assert code == 0 and "succeeded" in out
    assert "Step 1/" in err and "The job has successfully completed" in err


def test_cancel_then_wait_exits_1(emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emu.pace = 1.0  # slow enough that the job is still running when we cancel it
    code, out, _ = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(_train_file(tmp_path))
    )
    job_id = out.strip()
    code, out, _ = _run(capsys, "cancel", job_id, "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled"
    code, out, err = _run(capsys, "wait", job_id, "--json", "--no-progress")
    assert code == 1 and "was cancelled" in err and json.loads(out)["status"] == "cancelled"


def test_cancelling_a_finished_job_exits_1(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys,
        "train",
        "--model",
        "gpt-4o-mini-2024-07-18",
        "--training-file",
        str(_train_file(tmp_path)),
        "--wait",
        "--json",
        "--no-progress",
    )
    job_id = json.loads(out)["id"]
    assert code == 0 and json.loads(out)["status"] == "succeeded"
    code, out, err = _run(capsys, "cancel", job_id, "--json")
    assert code == 1 and json.loads(out)["status"] == "succeeded"
    assert "already succeeded" in err and job_id in err


def test_wait_timeout_says_how_to_reattach(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.pace = 1.0
    code, out, _ = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(_train_file(tmp_path))
    )
    job_id = out.strip()
    code, _, err = _run(
        capsys, "wait", job_id, "--timeout", "0.05", "--poll-interval", "0.01", "--no-progress"
    )
    assert code == 1 and f"finetune-wb wait {job_id}" in err
    emu.fail_job(job_id, code="quota_exceeded", message="Out of training quota")
    code, _, err = _run(capsys, "wait", job_id, "--no-progress")
    assert code == 1 and "quota_exceeded" in err and "Out of training quota" in err


def _event_lines(err: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in err.splitlines() if re.match(r"^\[\d\d:\d\d:\d\d\] ", line)]


def test_wait_timeout_then_reattach_with_the_cursor_prints_each_event_once(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.pace = 1.0
    code, out, _ = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(_train_file(tmp_path))
    )
    job_id = out.strip()
    client = emu.client()
    while not list(client.fine_tuning.jobs.list_events(job_id)):  # the job has said something
        pass
    code, _, err = _run(capsys, "wait", job_id, "--timeout", "0.05", "--poll-interval", "0.01")
    first = _event_lines(err)
    match = re.search(r"--after-event ([\w-]+)", err)
    assert code == 1 and first and match, err
    emu.fail_job(job_id, code="quota_exceeded", message="Out of training quota")
    code, _, err = _run(capsys, "wait", job_id, "--after-event", match.group(1), "--poll-interval", "0.01")
    second = _event_lines(err)
    server = [f"{e.level}: {e.message}" for e in reversed(list(client.fine_tuning.jobs.list_events(job_id)))]
    client.close()
    assert code == 1 and "quota_exceeded" in err
    assert first + second == server  # every event printed once, in order, across the two processes


def test_unknown_job_id_exits_1_naming_it(emu: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("status", "wait", "cancel"):
        for extra in ([], ["--json"]):
            code, out, err = _run(capsys, command, "ftjob-missing", *extra)
            assert code == 1, (command, extra)
            assert "no fine-tuning job ftjob-missing" in err and "finetune-wb jobs" in err
            assert "Traceback" not in err and out == "" and "step" not in err  # no empty progress bar


def test_upload_json_of_an_invalid_file_prints_the_report(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "upload", str(_train_file(tmp_path, broken=True)), "--json")
    report = json.loads(out)
    assert code == 1 and "validator found" in err
    assert report["ok"] is False and any(issue["line"] == 4 for issue in report["issues"])
    assert not any(e.method == "POST" for e in emu.journal)


def test_jobs_refuses_an_unknown_status(emu: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["jobs", "--status", "finished"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_usage_errors_exit_2_and_api_errors_exit_1(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "train", "--model", "m", "--training-file", "not-a-file.jsonl")
    assert code == 2 and "neither a readable file nor a file id" in err
    code, _, err = _run(capsys, "jobs", "--metadata", "novalue")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = _run(capsys, "status", "ftjob-does-not-exist")
    assert code == 1 and "404" in err
    code, _, err = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", "file-missing"
    )
    assert code == 1 and "error:" in err


def test_commands_use_azure_variables_when_no_openai_ones_are_set(
    finetune_emulator: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", finetune_emulator.base_url.removesuffix("/v1"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    code, out, err = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(_train_file(tmp_path)),
        "--wait", "--json", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "succeeded"
    code, out, _ = _run(capsys, "status", job["id"], "--json")
    assert code == 0 and json.loads(out)["id"] == job["id"]
    assert finetune_emulator.journal and all(
        "api-version=2024-10-21" in (e.query or "") for e in finetune_emulator.journal
    )


def test_bad_job_settings_name_the_flag_and_send_nothing(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_train_file(tmp_path))
    code, out, err = _run(
        capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", path, "--epochs", "0",
        "--suffix", "x" * 70,
    )  # fmt: skip
    assert code == 2 and out == ""
    assert "--epochs: n_epochs must be" in err and "--suffix:" in err and "errors.pydantic.dev" not in err
    code, _, err = _run(capsys, "upload", str(tmp_path))
    assert code == 2 and "is a directory" in err
    assert not any(e.method == "POST" for e in emu.journal)


def test_connection_error_names_the_server_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finetune_wb.cli import main

    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:s3cret-pass@127.0.0.1:9/v1?api-key=s3cret-query")
    code = main(["jobs"])
    err = capsys.readouterr().err
    assert code == 1
    assert "could not reach http://127.0.0.1:9/v1" in err
    assert "s3cret" not in err


def test_upload_and_train_record_the_file_id_with_the_wandb_dataset_artifact(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI passes tracking's artifact record to the upload (which itself knows nothing of W&B): the
    dataset artifact logged before gets the file id, and an upload whose registry entry is lost finds it."""
    import hashlib

    import wandb

    from finetune_wb.jobs.registry import registry_path
    from finetune_wb.tracking.artifacts import find_artifact
    from finetune_wb.tracking.datasets import log_dataset

    path = _train_file(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    run = wandb.init(project="cli-upload-tests", reinit="create_new")
    try:
        assert log_dataset(path, run=run, split="train", validate=False).file_id is None
    finally:
        run.finish()

    code, out, _ = _run(capsys, "upload", str(path))
    file_id = out.strip()
    ref = find_artifact(digest=digest, type_="dataset")
    assert code == 0 and ref is not None and ref.file_id == file_id
    assert ref.metadata["openai_file_id"] == file_id

    registry_path().unlink()  # another machine's registry, a wiped cache: the artifact record still knows
    code, out, _ = _run(capsys, "upload", str(path), "--json")
    assert code == 0 and json.loads(out)["id"] == file_id
    assert sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/files") == 1

    # `train` with a local path uploads it the same way (here: re-used through the artifact record again).
    registry_path().unlink()
    code, out, _ = _run(capsys, "train", "--model", "gpt-4o-mini-2024-07-18", "--training-file", str(path))
    assert code == 0 and out.strip().startswith("ftjob-")
    assert sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/files") == 1
    job = emu.client().fine_tuning.jobs.retrieve(out.strip())
    assert job.training_file == file_id
