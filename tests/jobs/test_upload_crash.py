"""upload_file killed with SIGKILL mid-upload, then called again: the work is adopted or resumed, not repeated.

A worker process uploads against an emulator this test starts (``run_emulator``); it is killed at a known
point, and the same upload is then run in the test process, sharing the worker's local state directory
(``FINETUNE_WB_HOME``). The emulator's journal shows what each process sent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_wb._paths import state_dir
from finetune_wb.emulator.runner import Emulator, run_emulator
from finetune_wb.jobs.upload import upload_file
from finetune_wb.jobs.upload_progress import PROGRESS_DIR
from tests.fakes.processes import kill9, wait_until

THRESHOLD, PART_SIZE = 2048, 1024

WORKER = """
import json, sys
from openai import OpenAI
from finetune_wb._retry import RetryPolicy
from finetune_wb.jobs.upload import upload_file

base_url, path, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
file = upload_file(path, client=client, progress=False, retry=RetryPolicy(max_attempts=3), **kwargs)
print("uploaded", file.id, flush=True)
"""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with run_emulator(pace=0.01) as emulator:
        yield emulator


def _training_file(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        messages = [
            {"role": "user", "content": f"Is clause {i} about confidentiality?"},
            {"role": "assistant", "content": "Yes" if i % 2 else "No"},
        ]
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _start(tmp_path: Path, emu: Emulator, data: Path, **kwargs: Any) -> subprocess.Popen[str]:
    script = tmp_path / "upload_worker.py"
    script.write_text(WORKER, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), emu.base_url, str(data), json.dumps(kwargs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _posts(emu: Emulator, match: Callable[[str], bool], *, ok: bool = True) -> list[Any]:
    return [e for e in emu.journal if e.method == "POST" and match(e.path) and (e.status < 400 or not ok)]


def _is_part(path: str) -> bool:
    return path.startswith("/v1/uploads/") and path.endswith("/parts")


def _progress_records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((state_dir() / PROGRESS_DIR).glob("*.json"))]


def test_killed_after_the_server_stored_the_file_the_next_upload_adopts_it(
    emu: Emulator, tmp_path: Path
) -> None:
    data = _training_file(tmp_path / "train.jsonl", 12)
    # the server stores the file, then the answer is lost (a 500); the worker backs off for a minute
    emu.inject_fault(path="/v1/files", method="POST", status=500, after_handler=True, retry_after_ms=60_000)
    proc = _start(tmp_path, emu, data)
    wait_until(
        lambda: bool(_posts(emu, lambda p: p == "/v1/files", ok=False)), proc, "the upload to be stored"
    )
    kill9(proc)
    client = emu.client()
    (stored,) = client.files.list().data
    assert [r["kind"] for r in _progress_records()] == ["file"]  # recorded before the request

    file_obj = upload_file(data, client=client, progress=False)
    assert file_obj.id == stored.id
    assert [f.id for f in client.files.list().data] == [stored.id]  # one file on the server
    assert len(_posts(emu, lambda p: p == "/v1/files", ok=False)) == 1  # nothing sent again
    assert _progress_records() == []
    assert upload_file(data, client=client, progress=False).id == stored.id  # and the registry knows it


def _kill_after_some_parts(tmp_path: Path, emu: Emulator, data: Path) -> int:
    """Run a worker that uploads ``data`` in parts, one at a time; kill it after a few; return how many."""
    emu.inject_latency(0.4, path="/v1/uploads/*/parts", method="POST")
    proc = _start(
        tmp_path,
        emu,
        data,
        multipart_threshold=THRESHOLD,
        part_size=PART_SIZE,
        max_concurrency=1,
        validate=False,
    )
    wait_until(lambda: len(_posts(emu, _is_part)) >= 2, proc, "two parts to be sent")
    # the next part is still in its latency: make it fail, with a long retry-after, and kill the worker then
    emu.inject_fault(path="/v1/uploads/*/parts", method="POST", status=500, retry_after_ms=60_000)
    wait_until(lambda: any(e.fault for e in _posts(emu, _is_part, ok=False)), proc, "a part to fail")
    kill9(proc)
    return len(_posts(emu, _is_part))


def test_killed_multipart_upload_is_resumed_with_only_the_missing_parts(
    emu: Emulator, tmp_path: Path
) -> None:
    data = _training_file(tmp_path / "train.jsonl", 60)
    n_parts = -(-data.stat().st_size // PART_SIZE)
    sent = _kill_after_some_parts(tmp_path, emu, data)
    assert 2 <= sent < n_parts
    (record,) = _progress_records()
    assert record["kind"] == "upload" and len(record["parts"]) == sent

    client = emu.client()
    file_obj = upload_file(
        data,
        client=client,
        progress=False,
        multipart_threshold=THRESHOLD,
        part_size=PART_SIZE,
        validate=False,
    )
    assert len(_posts(emu, _is_part)) == n_parts  # each part sent once, over both processes
    assert len(_posts(emu, lambda p: p == "/v1/uploads")) == 1  # the same upload was completed
    (complete,) = _posts(emu, lambda p: p.endswith("/complete"))
    assert complete.path == f"/v1/uploads/{record['upload_id']}/complete"
    assert client.files.content(file_obj.id).content == data.read_bytes()
    assert [f.id for f in client.files.list().data] == [file_obj.id]
    assert _progress_records() == []


@pytest.mark.parametrize("why", ["expired", "cancelled", "unknown"])
def test_an_upload_that_cannot_be_resumed_is_cancelled_and_sent_afresh(
    emu: Emulator, tmp_path: Path, why: str
) -> None:
    data = _training_file(tmp_path / "train.jsonl", 60)
    n_parts = -(-data.stat().st_size // PART_SIZE)
    sent = _kill_after_some_parts(tmp_path, emu, data)
    (path,) = sorted((state_dir() / PROGRESS_DIR).glob("*.json"))
    record = json.loads(path.read_text())
    first = record["upload_id"]
    client = emu.client()
    if why == "expired":
        record["expires_at"] = time.time() - 1
    elif why == "cancelled":
        client.uploads.cancel(first)  # by someone else: the server refuses more parts
    else:
        record["upload_id"] = "upload_unknown0000"  # e.g. another server behind the same URL
    path.write_text(json.dumps(record))

    file_obj = upload_file(
        data,
        client=client,
        progress=False,
        multipart_threshold=THRESHOLD,
        part_size=PART_SIZE,
        validate=False,
    )
    creates = _posts(emu, lambda p: p == "/v1/uploads")
    assert len(creates) == 2 and len(_posts(emu, _is_part)) == sent + n_parts
    if why != "unknown":
        assert emu.core.store.uploads[first]["status"] == "cancelled"  # not left pending
    if why == "expired":
        assert _posts(emu, lambda p: p == f"/v1/uploads/{first}/cancel")  # cancelled by the resume
    assert client.files.content(file_obj.id).content == data.read_bytes()
    assert [f.id for f in client.files.list().data] == [file_obj.id]
    assert _progress_records() == []


def test_ctrl_c_mid_multipart_keeps_the_upload_for_the_next_call(emu: Emulator, tmp_path: Path) -> None:
    data = _training_file(tmp_path / "train.jsonl", 60)
    n_parts = -(-data.stat().st_size // PART_SIZE)
    emu.inject_latency(0.5, path="/v1/uploads/*/parts", method="POST")
    proc = _start(
        tmp_path,
        emu,
        data,
        multipart_threshold=THRESHOLD,
        part_size=PART_SIZE,
        max_concurrency=1,
        validate=False,
    )
    wait_until(lambda: len(_posts(emu, _is_part)) >= 2, proc, "two parts to be sent")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)  # the part in flight finishes; the ones not begun are dropped
    assert proc.returncode != 0 and "KeyboardInterrupt" in stderr
    sent = len(_posts(emu, _is_part))
    assert sent < n_parts
    (record,) = _progress_records()
    assert len(record["parts"]) == sent
    assert emu.core.store.uploads[record["upload_id"]]["status"] == "pending"  # not cancelled

    client = emu.client()
    file_obj = upload_file(
        data,
        client=client,
        progress=False,
        multipart_threshold=THRESHOLD,
        part_size=PART_SIZE,
        validate=False,
    )
    assert len(_posts(emu, _is_part)) == n_parts and len(_posts(emu, lambda p: p == "/v1/uploads")) == 1
    assert client.files.content(file_obj.id).content == data.read_bytes()
    assert _progress_records() == []
