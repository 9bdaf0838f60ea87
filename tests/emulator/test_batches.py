"""The emulator's Batch API: lifecycle on its clock, line formats, validation, faults, pagination, cancel."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.emulator import Emulator, ManualClock, run_emulator
from finetune_wb.errors import EmulatorError

BASE = "gpt-4o-mini-2024-07-18"
URL = "/v1/chat/completions"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with run_emulator(clock=ManualClock()) as emulator:
        yield emulator


def line(i: int, model: str = BASE, **over: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"Is clause {i} confidential?"}]}
    return {"custom_id": f"row-{i}", "method": "POST", "url": URL, "body": body, **over}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]], purpose: str = "batch") -> str:
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    return client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


def create(client: openai.OpenAI, lines: list[dict[str, Any]], **meta: str) -> Any:
    return client.batches.create(
        input_file_id=upload(client, lines), endpoint=URL, completion_window="24h", metadata=meta or None
    )


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x.strip()]


def test_lifecycle_on_the_clock_and_output_lines_match_sync_chat(emu: Emulator) -> None:
    client = emu.client()
    batch = create(client, [line(i) for i in range(4)], purpose="eval")
    assert batch.status == "validating" and batch.metadata == {"purpose": "eval"}
    assert batch.expires_at == batch.created_at + 24 * 3600
    emu.advance(2.5)
    got = client.batches.retrieve(batch.id)
    assert got.status == "in_progress" and got.request_counts.total == 4
    emu.advance(5)
    assert client.batches.retrieve(batch.id).status == "finalizing"
    emu.advance(1)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at is not None
    assert done.request_counts.completed == 4 and done.request_counts.failed == 0
    assert done.error_file_id is None
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    out = read_lines(client, done.output_file_id)
    assert [x["custom_id"] for x in out] == [f"row-{i}" for i in range(4)]
    first = out[0]
    assert set(first) == {"id", "custom_id", "response", "error"} and first["error"] is None
    assert first["id"].startswith("batch_req_") and first["response"]["status_code"] == 200
    assert first["response"]["request_id"].startswith("req_")
    sync = client.chat.completions.create(**line(0)["body"])
    assert first["response"]["body"]["choices"][0]["message"]["content"] == sync.choices[0].message.content
    assert emu.batch_lines_answered == 4


def test_validation_errors_name_the_lines(emu: Emulator) -> None:
    client = emu.client()
    lines = [
        line(0),
        line(1, custom_id="row-0"),
        line(2, url="/v1/embeddings"),
        line(3, model="gpt-4.1-mini"),
    ]
    batch = create(client, lines)
    emu.advance(3)
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    by_line = {e.line: e.code for e in failed.errors.data}
    assert by_line == {2: "duplicate_custom_id", 3: "mismatched_endpoint", 4: "mismatched_model"}
    assert failed.output_file_id is None and emu.batch_lines_answered == 0


def test_input_file_must_have_purpose_batch(emu: Emulator) -> None:
    client = emu.client()
    fid = upload(client, [line(0)], purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
        client.batches.create(input_file_id=fid, endpoint=URL, completion_window="24h")


def test_fault_fail_validation_expire_half_and_line_errors(emu: Emulator) -> None:
    client = emu.client()
    emu.batch_fault(fail_validation="Model gpt-x is not available for batch.")
    emu.batch_fault(expire_after_fraction=0.5)
    emu.batch_fault(error_every=3)
    failed, expired, errored = (create(client, [line(i) for i in range(6)]) for _ in range(3))
    emu.advance(10)
    f = client.batches.retrieve(failed.id)
    assert f.status == "failed" and f.errors.data[0].message == "Model gpt-x is not available for batch."
    e = client.batches.retrieve(expired.id)
    assert e.status == "expired" and e.expired_at is not None
    assert e.request_counts.completed == 3
    assert [x["custom_id"] for x in read_lines(client, e.output_file_id)] == ["row-0", "row-1", "row-2"]
    rest = read_lines(client, e.error_file_id)
    assert [x["error"]["code"] for x in rest] == ["batch_expired"] * 3 and rest[0]["response"] is None
    r = client.batches.retrieve(errored.id)
    assert r.status == "completed" and r.request_counts.failed == 2 and r.request_counts.completed == 4
    errs = read_lines(client, r.error_file_id)
    assert [x["custom_id"] for x in errs] == ["row-2", "row-5"]
    assert errs[0]["response"]["status_code"] == 500 and "error" in errs[0]["response"]["body"]
    with pytest.raises(EmulatorError, match="expire_after_fraction"):
        emu.batch_fault(expire_after_fraction=1.5)


def test_unknown_model_line_goes_to_the_error_file(emu: Emulator) -> None:
    client = emu.client()
    batch = create(client, [line(0, model="ft:gpt-4o-mini-2024-07-18:org::nope")])
    emu.advance(10)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.failed == 1
    err = read_lines(client, done.error_file_id)[0]
    assert (
        err["response"]["status_code"] == 404
        and err["response"]["body"]["error"]["code"] == "model_not_found"
    )


def test_list_is_newest_first_with_cursor_pages(emu: Emulator) -> None:
    client = emu.client()
    ids = [create(client, [line(i)]).id for i in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    rest = client.batches.list(limit=2, after=page.data[-1].id)
    assert [b.id for b in rest.data] == [ids[0]] and not rest.has_more
    assert [b.id for b in client.batches.list(limit=1)] == ids[::-1]  # auto-pagination follows the cursor
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_cancel_passes_through_cancelling(emu: Emulator) -> None:
    client = emu.client()
    batch = create(client, [line(i) for i in range(3)])
    emu.advance(3)
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = client.batches.retrieve(batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert [x["error"]["code"] for x in read_lines(client, done.error_file_id)] == ["batch_cancelled"] * 3
    with pytest.raises(openai.BadRequestError, match="cancelled"):
        client.batches.cancel(batch.id)


def test_batches_are_persisted_like_jobs(tmp_path: Path) -> None:
    clock = ManualClock()
    with run_emulator(clock=clock, persist_dir=tmp_path) as first:
        batch = create(first.client(), [line(0)])
    with run_emulator(clock=clock, persist_dir=tmp_path) as second:
        second.advance(10)
        again = second.client().batches.retrieve(batch.id)
        assert again.status == "completed" and again.request_counts.completed == 1


def test_admin_route_sets_batch_faults(emu: Emulator) -> None:
    import httpx

    r = httpx.post(emu.url + "/_emulator/batch_faults", json={"error_every": 1})
    assert r.status_code == 200 and r.json()["pending"][0]["error_every"] == 1
    bad = httpx.post(emu.url + "/_emulator/batch_faults", json={"error_every": 0})
    assert bad.status_code == 400
    client = emu.client()
    batch = create(client, [line(0), line(1)])
    emu.advance(10)
    assert client.batches.retrieve(batch.id).request_counts.failed == 2
