"""`finetune-wb train` run again with the same file, spec and server re-attaches to the same job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.jobs.attach import FINGERPRINT_KEY, record_path

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def emu(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def _train_file(tmp_path: Path, name: str = "train.jsonl", *, answer: str = "Yes") -> Path:
    path = tmp_path / name
    lines = []
    for i in range(14):
        messages = [
            {"role": "user", "content": f"Is clause {i} about confidentiality?"},
            {"role": "assistant", "content": answer if i % 2 else "No"},
        ]
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _train(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    return _run(capsys, "train", "--model", MODEL, "--training-file", str(path), "--suffix", "re", *extra)


def _creates(emu: Any) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/fine_tuning/jobs")


def test_same_file_spec_and_server_reattach_to_one_job(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_file(tmp_path)
    code, out, err = _train(capsys, path, "--epochs", "2")
    assert code == 0, err
    job_id = out.strip()
    assert job_id.startswith("ftjob-") and "re-attached" not in err

    code, out, err = _train(capsys, path, "--epochs", "2")
    assert code == 0, err
    assert out.strip() == job_id
    assert f"re-attached to {job_id}, created " in err and "ago" in err and "--new" in err
    assert _creates(emu) == 1
    assert sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/files") == 1

    code, out, err = _train(capsys, path, "--epochs", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["id"] == job_id and doc["reattached"] is True and doc["status"]
    assert doc["metadata"][FINGERPRINT_KEY] and len(doc["metadata"][FINGERPRINT_KEY]) <= 64
    assert _creates(emu) == 1


def test_new_flag_creates_a_second_job(emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _train_file(tmp_path)
    _, first, _ = _train(capsys, path)
    code, out, err = _train(capsys, path, "--new", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["id"] != first.strip() and doc["reattached"] is False
    assert _creates(emu) == 2
    # A later plain re-run re-attaches to the newest one rather than creating a third.
    code, out, _ = _train(capsys, path)
    assert code == 0 and out.strip() == doc["id"] and _creates(emu) == 2


def test_another_spec_or_file_is_another_job(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_file(tmp_path)
    ids = {_train(capsys, path, "--epochs", "2")[1].strip()}
    ids.add(_train(capsys, path, "--epochs", "3")[1].strip())
    ids.add(_train(capsys, path, "--epochs", "2", "--seed", "7")[1].strip())
    other = _train_file(tmp_path, "other.jsonl", answer="Maybe")
    ids.add(_train(capsys, other, "--epochs", "2")[1].strip())
    assert len(ids) == 4 and _creates(emu) == 4
    # The same content under another name is the same file: re-attached.
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    code, out, err = _train(capsys, copy, "--epochs", "2")
    assert code == 0 and out.strip() in ids and "re-attached" in err and _creates(emu) == 4


def test_reattach_survives_losing_the_local_record(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_file(tmp_path)
    _, out, _ = _train(capsys, path)
    job_id = out.strip()
    assert record_path().is_file()
    record_path().unlink()
    code, out, err = _train(capsys, path)
    assert code == 0, err
    assert out.strip() == job_id and "re-attached" in err and _creates(emu) == 1


def test_a_cancelled_job_is_not_reattached(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.pace = 1.0  # still running when cancelled
    path = _train_file(tmp_path)
    _, out, _ = _train(capsys, path)
    job_id = out.strip()
    assert _run(capsys, "cancel", job_id)[0] == 0
    code, out, err = _train(capsys, path)
    assert code == 0, err
    assert out.strip() != job_id and f"{job_id} for this file and spec was cancelled" in err
    assert _creates(emu) == 2
    # ... also when only the server knows about them.
    record_path().unlink()
    _run(capsys, "cancel", out.strip())
    code, out3, err = _train(capsys, path)
    assert code == 0 and out3.strip() not in (job_id, out.strip()) and "cancelled" in err
    assert _creates(emu) == 3


def test_ctrl_c_during_train_wait_then_rerun_waits_for_the_same_job(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.pace = 0.3  # the job runs for a few seconds: the interrupt lands while it is running
    path = _train_file(tmp_path)
    argv = [
        "train",
        "--model",
        MODEL,
        "--training-file",
        str(path),
        "--suffix",
        "re",
        "--wait",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "finetune_wb", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 90
        # Wait until the job exists and the CLI is polling it, then press Ctrl-C (a real SIGINT).
        while not any(
            e.method == "GET" and e.path.startswith("/v1/fine_tuning/jobs/ftjob-") for e in emu.journal
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "train --wait never started waiting"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 130, err
    created = [e for e in emu.journal if e.method == "POST" and e.path == "/v1/fine_tuning/jobs"]
    assert len(created) == 1
    job_id = next(
        e.path.split("/")[4]
        for e in emu.journal
        if e.method == "GET" and e.path.startswith("/v1/fine_tuning/jobs/ftjob-")
    )
    assert emu.job(job_id)["status"] not in ("succeeded", "failed", "cancelled")

    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["id"] == job_id and doc["reattached"] is True and doc["status"] == "succeeded"
    assert f"re-attached to {job_id}" in err and _creates(emu) == 1


def test_too_many_metadata_pairs_is_a_usage_error(
    emu: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = [a for i in range(15) for a in ("--metadata", f"k{i}=v")]
    code, _, err = _train(capsys, _train_file(tmp_path), *pairs)
    assert code == 2 and "at most 14" in err and _creates(emu) == 0


def _spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "finetune_wb", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode, out, err


def test_two_processes_training_the_same_request_at_once_make_one_job(emu: Any, tmp_path: Path) -> None:
    path = _train_file(tmp_path)
    # The create answers slowly, so the second process starts while the first is still creating.
    emu.inject_latency(1.5, path="/v1/fine_tuning/jobs", method="POST")
    argv = ("train", "--model", MODEL, "--training-file", str(path), "--suffix", "re")
    first, second = _spawn(*argv), _spawn(*argv)
    (code1, out1, err1), (code2, out2, err2) = _finish(first), _finish(second)
    assert code1 == 0 and code2 == 0, (err1, err2)
    assert out1.strip() == out2.strip() and out1.strip().startswith("ftjob-")
    assert "re-attached" in err1 + err2 and _creates(emu) == 1
