"""upload_file: validation first, SHA-256 de-duplication, multi-part uploads, waiting for processing.

Most tests use a small in-memory fake of the files/uploads API (exact fault placement); the emulator
tests at the bottom check the same guarantees over real HTTP with the request journal.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from finetune_wb._paths import state_dir
from finetune_wb._retry import RetryPolicy
from finetune_wb.errors import DataError, DataValidationError, UploadError
from finetune_wb.jobs.registry import lookup_upload, registry_path
from finetune_wb.jobs.upload import upload_file

NO_WAIT = RetryPolicy(max_attempts=5, initial_wait=0.0, jitter=False, sleep=lambda _s: None)


def _error(status: int) -> openai.APIStatusError:
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://fake.test/v1/x"))
    cls = openai.NotFoundError if status == 404 else openai.InternalServerError
    return cls(f"fake {status}", response=response, body=None)


class FakeFilesServer:
    def __init__(self, *, processing_polls: int = 0, final_status: str = "processed") -> None:
        self.files: dict[str, SimpleNamespace] = {}
        self.contents: dict[str, bytes] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.processing_polls = processing_polls
        self.final_status = final_status
        self.polls: dict[str, int] = {}
        self.part_faults: dict[int, int] = {}  # part index (by first byte offset order) -> failures left
        self.part_attempts: list[int] = []
        self.created = 0

    def new_file(self, name: str, data: bytes, purpose: str) -> SimpleNamespace:
        self.created += 1
        file_id = f"file-{self.created - 1:04d}"
        status = "uploaded" if self.processing_polls else self.final_status
        obj = SimpleNamespace(
            id=file_id, bytes=len(data), filename=name, purpose=purpose, status=status, status_details=None
        )
        self.files[file_id] = obj
        self.contents[file_id] = data
        return obj


class FakeFilesClient:
    def __init__(self, server: FakeFilesServer, base_url: str = "http://fake.test/v1") -> None:
        self.server = server
        self.base_url = base_url
        self.api_key = "sk-secret-do-not-store"
        self.files = SimpleNamespace(create=self._create, retrieve=self._retrieve)
        parts = SimpleNamespace(create=self._part)
        self.uploads = SimpleNamespace(
            create=self._upload, parts=parts, complete=self._complete, cancel=self._cancel
        )

    def with_options(self, **_kw: Any) -> FakeFilesClient:
        return FakeFilesClient(self.server, self.base_url)

    def _create(self, *, file: tuple[str, Any], purpose: str) -> SimpleNamespace:
        self.server.calls.append("files.create")
        name, fh = file
        return self.server.new_file(name, fh.read(), purpose)

    def _retrieve(self, file_id: str) -> SimpleNamespace:
        self.server.calls.append("files.retrieve")
        obj = self.server.files.get(file_id)
        if obj is None:
            raise _error(404)
        polls = self.server.polls[file_id] = self.server.polls.get(file_id, 0) + 1
        if obj.status == "uploaded" and polls >= self.server.processing_polls:
            obj.status = self.server.final_status
            if obj.status == "error":
                obj.status_details = "line 2: invalid JSON"
        return obj

    def _upload(self, *, bytes: int, filename: str, mime_type: str, purpose: str) -> SimpleNamespace:
        self.server.calls.append("uploads.create")
        upload_id = f"upload_{len(self.server.uploads)}"
        self.server.uploads[upload_id] = {
            "bytes": bytes,
            "filename": filename,
            "parts": {},
            "purpose": purpose,
        }
        return SimpleNamespace(id=upload_id, status="pending")

    def _part(self, upload_id: str, *, data: bytes) -> SimpleNamespace:
        self.server.calls.append("uploads.parts.create")
        upload = self.server.uploads[upload_id]
        index = data[0]  # tests write files whose parts start with their own index byte
        self.server.part_attempts.append(index)
        if self.server.part_faults.get(index, 0) > 0:
            self.server.part_faults[index] -= 1
            raise _error(500)
        part_id = f"part_{index}_{len(upload['parts'])}"
        upload["parts"][part_id] = data
        return SimpleNamespace(id=part_id)

    def _complete(self, upload_id: str, *, part_ids: list[str], md5: str) -> SimpleNamespace:
        self.server.calls.append("uploads.complete")
        upload = self.server.uploads[upload_id]
        data = b"".join(upload["parts"][p] for p in part_ids)
        assert len(data) == upload["bytes"]
        assert hashlib.md5(data).hexdigest() == md5
        file_obj = self.server.new_file(upload["filename"], data, upload["purpose"])
        return SimpleNamespace(id=upload_id, status="completed", file=file_obj)

    def _cancel(self, upload_id: str) -> SimpleNamespace:
        self.server.calls.append("uploads.cancel")
        return SimpleNamespace(id=upload_id, status="cancelled")


def _chat_line(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Answer Yes or No."},
            {"role": "user", "content": f"Clause number {i}: the recipient shall keep it secret."},
            {"role": "assistant", "content": "Yes" if i % 2 else "No"},
        ]
    }


def _write_jsonl(path: Path, n: int = 12) -> Path:
    path.write_text("".join(json.dumps(_chat_line(i)) + "\n" for i in range(n)), encoding="utf-8")
    return path


def _upload(path: Any, client: Any, **kw: Any) -> Any:
    kw.setdefault("progress", False)
    kw.setdefault("retry", NO_WAIT)
    kw.setdefault("sleep", lambda _s: None)
    return upload_file(path, client=client, **kw)


def test_refuses_a_file_with_errors_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_chat_line(1)) + "\n" + '{"messages": [{"role": "user"}]}\n', encoding="utf-8")
    server = FakeFilesServer()
    with pytest.raises(DataValidationError) as info:
        _upload(path, FakeFilesClient(server))
    assert info.value.report is not None and not info.value.report.ok
    assert "validate=False" in str(info.value)
    assert server.calls == []
    assert _upload(path, FakeFilesClient(server), validate=False).status == "processed"


def test_second_upload_of_same_content_is_reused(tmp_path: Path) -> None:
    server = FakeFilesServer()
    client = FakeFilesClient(server)
    first = _upload(_write_jsonl(tmp_path / "a.jsonl"), client)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes((tmp_path / "a.jsonl").read_bytes())
    second = _upload(copy, client)
    assert second.id == first.id
    assert server.calls.count("files.create") == 1
    registry = registry_path().read_text()
    assert first.id in registry and "sk-secret" not in registry
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    record = lookup_upload(digest, purpose="fine-tune", base_url="http://fake.test/v1")
    assert record is not None and record.file_id == first.id and record.bytes == copy.stat().st_size
    # another server (or purpose) is another key
    other = _upload(copy, FakeFilesClient(server, base_url="http://other.test/v1"))
    assert other.id != first.id and server.calls.count("files.create") == 2
    assert _upload(copy, client, reuse=False).id not in (first.id, other.id)


class DictIndex:
    """A FileIndex kept in a dict, recording what the upload asked and told it."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}
        self.asked: list[tuple[str, str]] = []

    def file_id_for(self, sha256: str, *, purpose: str) -> str | None:
        self.asked.append((sha256, purpose))
        return self.ids.get((sha256, purpose))

    def remember(self, sha256: str, file_id: str, *, purpose: str) -> None:
        self.ids[(sha256, purpose)] = file_id


def test_a_callers_index_is_told_every_upload_and_consulted_when_the_registry_has_none(
    tmp_path: Path,
) -> None:
    """The upload's second record of digest -> file id is whatever the caller passes (tracking passes W&B's)."""
    server = FakeFilesServer()
    client = FakeFilesClient(server)
    path = _write_jsonl(tmp_path / "a.jsonl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    index = DictIndex()
    first = _upload(path, client, index=index)
    assert index.ids == {(digest, "fine-tune"): first.id}

    registry_path().unlink()  # the registry is lost: the index still knows, and the server confirms it
    assert _upload(path, client, index=index).id == first.id
    assert server.calls.count("files.create") == 1 and (digest, "fine-tune") in index.asked
    assert lookup_upload(digest, purpose="fine-tune", base_url=client.base_url) is not None  # back in it

    registry_path().unlink()
    del server.files[first.id]  # an id the server no longer has is not re-used: uploaded again
    again = _upload(path, client, index=index)
    assert again.id != first.id and index.ids[(digest, "fine-tune")] == again.id
    assert _upload(path, client).id == again.id  # without an index, the registry alone still de-duplicates


def test_deleted_file_is_uploaded_again(tmp_path: Path) -> None:
    server = FakeFilesServer()
    client = FakeFilesClient(server)
    path = _write_jsonl(tmp_path / "a.jsonl")
    first = _upload(path, client)
    del server.files[first.id]
    second = _upload(path, client)
    assert second.id != first.id and server.calls.count("files.create") == 2
    assert _upload(path, client).id == second.id


def test_examples_are_staged_and_deduplicated(tmp_path: Path) -> None:
    from finetune_wb.schema import ChatExample

    examples = [ChatExample.model_validate(_chat_line(i)) for i in range(12)]
    server = FakeFilesServer()
    client = FakeFilesClient(server)
    first = _upload(examples, client)
    again = _upload([_chat_line(i) for i in range(12)], client)  # same lines as dicts
    assert again.id == first.id and server.calls.count("files.create") == 1
    lines = server.contents[first.id].decode().splitlines()
    assert [json.loads(line) for line in lines] == [_chat_line(i) for i in range(12)]
    assert list((state_dir() / "staged").glob("examples-*.jsonl"))
    with pytest.raises(DataError, match="empty"):
        _upload([], client)


def _indexed_file(path: Path, *, parts: int, part_size: int) -> bytes:
    """Bytes whose part k starts with byte k, so the fake can tell parts apart."""
    data = b"".join(bytes([k]) + bytes((k * 7 + j) % 251 for j in range(part_size - 1)) for k in range(parts))
    data = data[: parts * part_size - 5]  # a short last part
    path.write_bytes(data)
    return data


def test_multipart_upload_in_parallel_with_one_part_retried(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    data = _indexed_file(path, parts=7, part_size=64)
    server = FakeFilesServer()
    server.part_faults = {3: 1}
    file_obj = _upload(
        path,
        FakeFilesClient(server),
        validate=False,
        multipart_threshold=100,
        part_size=64,
        max_concurrency=3,
    )
    assert server.contents[file_obj.id] == data
    assert "files.create" not in server.calls
    assert sorted(server.part_attempts) == [0, 1, 2, 3, 3, 4, 5, 6]  # only part 3 was sent twice
    assert server.calls.count("uploads.complete") == 1


def test_multipart_failure_cancels_the_upload(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _indexed_file(path, parts=4, part_size=64)
    server = FakeFilesServer()
    server.part_faults = {2: 99}
    with pytest.raises(UploadError, match="multi-part upload upload_0"):
        _upload(path, FakeFilesClient(server), validate=False, multipart_threshold=100, part_size=64)
    assert "uploads.cancel" in server.calls and "uploads.complete" not in server.calls


def test_waits_until_processed_or_reports_the_servers_reason(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "a.jsonl")
    server = FakeFilesServer(processing_polls=3)
    sleeps: list[float] = []
    file_obj = _upload(path, FakeFilesClient(server), sleep=sleeps.append, poll_interval=0.5)
    assert file_obj.status == "processed" and sleeps == [0.5, 1.0, 2.0]

    failing = FakeFilesServer(processing_polls=1, final_status="error")
    with pytest.raises(UploadError, match="line 2: invalid JSON") as info:
        _upload(path, FakeFilesClient(failing))
    assert info.value.file_id == "file-0000"

    slow = FakeFilesServer(processing_polls=10_000)
    now = [0.0]

    def tick(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(UploadError, match="still 'uploaded'"):
        _upload(
            path, FakeFilesClient(slow), reuse=False, sleep=tick, clock=lambda: now[0], processing_timeout=30
        )


def test_refuses_files_over_8_gb_and_missing_files(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as fh:  # sparse: takes no disk space
        fh.truncate(8 * 1024**3 + 1)
    with pytest.raises(UploadError, match="at most 8 GB"):
        _upload(huge, FakeFilesClient(FakeFilesServer()), validate=False)
    with pytest.raises(DataError, match="no such file"):
        _upload(tmp_path / "missing.jsonl", FakeFilesClient(FakeFilesServer()))


def test_registry_survives_concurrent_writers_and_corruption() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from finetune_wb.jobs.registry import UploadRecord, forget_upload, remember_upload

    def record(i: int) -> None:
        remember_upload(
            UploadRecord(
                sha256=f"{i:064x}",
                purpose="fine-tune",
                base_url="https://user:secret@api.example.test/v1/?key=abc",
                file_id=f"file-{i}",
                filename="x.jsonl",
                bytes=i,
                uploaded_at=0.0,
            )
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(record, range(40)))
    text = registry_path().read_text()
    assert len(json.loads(text)) == 40 and "secret" not in text and "key=abc" not in text
    found = lookup_upload(f"{7:064x}", purpose="fine-tune", base_url="https://api.example.test/v1")
    assert found is not None and found.file_id == "file-7"
    forget_upload(f"{7:064x}", purpose="fine-tune", base_url="https://api.example.test/v1")
    assert lookup_upload(f"{7:064x}", purpose="fine-tune", base_url="https://api.example.test/v1") is None
    registry_path().write_text("{not json")
    assert lookup_upload(f"{8:064x}", purpose="fine-tune", base_url="https://api.example.test/v1") is None
    record(9)  # a corrupt registry is replaced, not fatal
    assert len(json.loads(registry_path().read_text())) == 1


# --------------------------------------------------------------------------------------------- emulator


def test_emulator_second_upload_sends_no_file(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "train.jsonl")
    first = upload_file(path, client=finetune_emulator_client, progress=False)
    second = upload_file(path, client=finetune_emulator_client, progress=False)
    assert second.id == first.id and second.status == "processed"
    posts = [e for e in finetune_emulator.journal if e.method == "POST" and e.path.startswith("/v1/files")]
    assert len(posts) == 1
    checks = [e for e in finetune_emulator.journal if e.method == "GET" and e.path == f"/v1/files/{first.id}"]
    assert checks  # the re-use was confirmed with the server
    finetune_emulator_client.files.delete(first.id)
    third = upload_file(path, client=finetune_emulator_client, progress=False)
    assert third.id != first.id
    assert len([e for e in finetune_emulator.journal if e.method == "POST" and e.path == "/v1/files"]) == 2


def test_emulator_multipart_upload_with_a_failed_part(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "train.jsonl", n=40)
    size = path.stat().st_size
    part_size = 1024
    n_parts = -(-size // part_size)
    finetune_emulator.inject_fault(path="/v1/uploads/*/parts", method="POST", status=500, count=1)
    file_obj = upload_file(
        path,
        client=finetune_emulator_client,
        progress=False,
        multipart_threshold=2048,
        part_size=part_size,
        max_concurrency=3,
        retry=NO_WAIT,
    )
    journal = finetune_emulator.journal
    parts = [e for e in journal if e.method == "POST" and e.path.endswith("/parts")]
    assert n_parts >= 4 and len(parts) == n_parts + 1  # one part was sent twice, the others once
    assert sum(1 for e in parts if e.status == 500) == 1
    assert not any(e.method == "POST" and e.path == "/v1/files" for e in journal)
    assert [e.path.rsplit("/", 1)[-1] for e in journal if e.path.endswith("/complete")] == ["complete"]
    assert file_obj.status == "processed"
    assert finetune_emulator_client.files.content(file_obj.id).content == path.read_bytes()
    # and the next upload of the same bytes re-uses it, whichever API sent it
    again = upload_file(path, client=finetune_emulator_client, progress=False, multipart_threshold=2048)
    assert again.id == file_obj.id


def test_emulator_lost_complete_answer_finds_the_file(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "train.jsonl", n=20)
    finetune_emulator.inject_fault(
        path="/v1/uploads/*/complete", method="POST", status=500, after_handler=True
    )
    file_obj = upload_file(
        path,
        client=finetune_emulator_client,
        progress=False,
        multipart_threshold=1024,
        part_size=1024,
        retry=NO_WAIT,
    )
    completes = [e.status for e in finetune_emulator.journal if e.path.endswith("/complete")]
    assert completes == [500, 400]  # the retry was refused: the first attempt had completed it
    files = finetune_emulator_client.files.list().data
    assert [f.id for f in files] == [file_obj.id]  # the file the first attempt made, and no other
    assert finetune_emulator_client.files.content(file_obj.id).content == path.read_bytes()


def test_emulator_lost_upload_answer_leaves_one_file(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "train.jsonl")
    finetune_emulator.inject_fault(path="/v1/files", method="POST", status=500, after_handler=True)
    file_obj = upload_file(path, client=finetune_emulator_client, progress=False, retry=NO_WAIT)
    posts = [e.status for e in finetune_emulator.journal if e.method == "POST" and e.path == "/v1/files"]
    assert posts == [500]  # the server had stored it: found, not sent again
    assert [f.id for f in finetune_emulator_client.files.list().data] == [file_obj.id]
    assert finetune_emulator_client.files.content(file_obj.id).content == path.read_bytes()


def test_emulator_failed_upload_does_not_adopt_a_lookalike_file(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    path = _write_jsonl(tmp_path / "train.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    (tmp_path / "other").mkdir()
    lookalike = tmp_path / "other" / "train.jsonl"  # same name, size and purpose; other content
    lookalike.write_bytes(b"".join(reversed(lines)))
    earlier = upload_file(lookalike, client=finetune_emulator_client, progress=False, retry=NO_WAIT)
    finetune_emulator.inject_fault(path="/v1/files", method="POST", status=500)  # refused, nothing stored
    file_obj = upload_file(path, client=finetune_emulator_client, progress=False, retry=NO_WAIT)
    posts = [e.status for e in finetune_emulator.journal if e.method == "POST" and e.path == "/v1/files"]
    assert posts == [200, 500, 200] and file_obj.id != earlier.id
    assert finetune_emulator_client.files.content(file_obj.id).content == path.read_bytes()


def test_emulator_file_id_mapping_lives_with_the_wandb_dataset_artifact(
    finetune_emulator: Any, finetune_emulator_client: Any, tmp_path: Path
) -> None:
    import wandb

    from finetune_wb.tracking.artifacts import ArtifactFileIndex, find_artifact
    from finetune_wb.tracking.datasets import log_dataset

    index = ArtifactFileIndex()  # what the CLI and the session pass: the upload itself knows nothing of W&B
    path = _write_jsonl(tmp_path / "train.jsonl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    run = wandb.init(project="upload-tests", reinit="create_new")
    try:
        logged = log_dataset(path, run=run, split="train", validate=False)
    finally:
        run.finish()
    assert logged.file_id is None  # logged before it was uploaded

    first = upload_file(path, client=finetune_emulator_client, progress=False, index=index)
    ref = find_artifact(digest=digest, type_="dataset")
    assert ref is not None and ref.file_id == first.id and ref.metadata["openai_file_id"] == first.id

    run = wandb.init(project="upload-tests", reinit="create_new")  # a later run logging the same data
    try:
        again = log_dataset(path, run=run, split="train", validate=False)
    finally:
        run.finish()
    assert again.file_id == first.id and again.metadata["openai_file_id"] == first.id

    # The local registry is lost (another machine, a wiped cache): the artifact record still knows the id.
    registry_path().unlink()
    second = upload_file(path, client=finetune_emulator_client, progress=False, index=index)
    assert second.id == first.id
    assert len([e for e in finetune_emulator.journal if e.method == "POST" and e.path == "/v1/files"]) == 1
    assert lookup_upload(digest, purpose="fine-tune", base_url=finetune_emulator.base_url) is not None

    # An artifact id the server does not have (logged against another server) is checked, then ignored.
    registry_path().unlink()
    finetune_emulator_client.files.delete(first.id)
    third = upload_file(path, client=finetune_emulator_client, progress=False, index=index)
    assert third.id != first.id
    assert len([e for e in finetune_emulator.journal if e.method == "POST" and e.path == "/v1/files"]) == 2
    ref = find_artifact(digest=digest, type_="dataset")
    assert ref is not None and ref.file_id == third.id


def test_the_upload_alone_never_imports_wandb_or_tracking_and_records_nothing_there(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    """jobs sits below tracking: without an index, an upload neither loads W&B nor writes its records.

    A dataset artifact of the same data is already recorded; the upload leaves its record alone (the layer
    above, the CLI or the session, passes ``index=ArtifactFileIndex()`` for that, tested with the CLI).
    """
    import subprocess
    import sys

    from finetune_wb.tracking.artifacts import ArtifactRef, find_artifact, remember

    path = _write_jsonl(tmp_path / "train.jsonl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    remember(ArtifactRef(name="train", type="dataset", digest=digest))
    code = (
        "import sys, openai\n"
        "from finetune_wb.jobs.upload import upload_file\n"
        f"client = openai.OpenAI(base_url={finetune_emulator.base_url!r}, api_key='sk-emulator-upload-test')\n"
        f"print(upload_file({str(path)!r}, client=client, progress=False).id)\n"
        "print(sorted(m for m in sys.modules if m == 'wandb' or m.startswith(('wandb.', 'finetune_wb.tracking'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    file_id, loaded = done.stdout.strip().splitlines()[-2:]
    assert file_id.startswith("file-") and loaded == "[]"
    assert lookup_upload(digest, purpose="fine-tune", base_url=finetune_emulator.base_url).file_id == file_id
    ref = find_artifact(digest=digest, type_="dataset")
    assert ref is not None and ref.file_id is None and "openai_file_id" not in ref.metadata
