"""The emulator as a server: body caps (413), work off the event loop, uploads on disk, 400 for bad bodies."""

from __future__ import annotations

import json
import os
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from finetune_wb.emulator import BodyLimits, Emulator, run_emulator

MB = 1024 * 1024
AUTH = "Authorization: Bearer sk-test\r\n"


@pytest.fixture()
def small_caps() -> Iterator[Emulator]:
    limits = BodyLimits(file=1000, upload_part=1000, chat=4096, json=4096)
    with run_emulator(pace=0.01, limits=limits) as emu:
        yield emu


def raw_exchange(port: int, head: str, body: bytes, *, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """Send ``head`` and ``body`` (possibly less than the head declares) and read the answer; a server that
    waits for the rest of the body raises ``socket.timeout`` here."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without an answer: {data!r}"
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection in the middle of its answer"
            rest += chunk
    return int(header.split(b" ", 2)[1]), json.loads(rest[:length])


def assert_error_shape(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]  # type: ignore[no-any-return]


# --- 413 ----------------------------------------------------------------------------------------------------
def test_a_declared_body_over_the_cap_is_413_before_the_server_reads_it(small_caps: Emulator) -> None:
    # 10 MB declared, 100 bytes sent: the answer must come without the rest of the body
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + AUTH + "Content-Type: application/json\r\n"
        f"Content-Length: {10 * MB}\r\n\r\n"
    )
    status, body = raw_exchange(small_caps.port, head, b"{" + b" " * 99)
    err = assert_error_shape(body)
    assert status == 413 and err["type"] == "invalid_request_error" and err["code"] == "request_too_large"
    assert "4096" in err["message"] and str(10 * MB) in err["message"]
    assert small_caps.journal[-1].status == 413


def test_a_chunked_body_is_counted_as_it_arrives_and_cut_off_at_the_cap(small_caps: Emulator) -> None:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + AUTH + "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(6))  # 6 KB, never terminated
    status, body = raw_exchange(small_caps.port, head, chunks)
    assert status == 413 and assert_error_shape(body)["code"] == "request_too_large"


def test_an_upload_part_over_the_cap_is_413_before_it_is_read(small_caps: Emulator) -> None:
    up = small_caps.client().uploads.create(
        bytes=10, filename="a.jsonl", purpose="fine-tune", mime_type="text/jsonl"
    )
    head = (
        f"POST /v1/uploads/{up.id}/parts HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {3 * MB}\r\n\r\n"
    )
    status, body = raw_exchange(small_caps.port, head, b"--b\r\n")
    assert status == 413 and "1000 bytes" in assert_error_shape(body)["message"]


def test_a_file_over_the_cap_is_413_naming_the_file(small_caps: Emulator) -> None:
    client = small_caps.client(max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.files.create(file=("big.jsonl", b"x" * 5000), purpose="fine-tune")
    assert info.value.status_code == 413
    err = assert_error_shape(info.value.response.json())
    assert err["param"] == "file" and "5000" in err["message"] and "1000" in err["message"]
    assert client.files.create(file=("ok.jsonl", b"x" * 1000), purpose="fine-tune").bytes == 1000


def test_the_default_caps_are_the_documented_limits() -> None:
    limits = BodyLimits()
    assert (limits.file, limits.upload_part, limits.upload) == (512 * MB, 64 * MB, 8 * 1024 * MB)
    assert limits.chat == 50 * MB
    with pytest.raises(ValueError, match="'chat' must be a whole number of bytes"):
        BodyLimits(chat=0)


# --- off the event loop ---------------------------------------------------------------------------------------
def test_a_chat_request_being_answered_does_not_block_other_requests(
    finetune_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_wb.emulator import chat

    entered, release = threading.Event(), threading.Event()
    real_answer = chat.base_model_answer

    def slow_answer(model: str, messages: list[Any]) -> str:
        entered.set()
        release.wait(30)  # bounded: a server that never answers the small request still ends the test
        return real_answer(model, messages)

    monkeypatch.setattr(chat, "base_model_answer", slow_answer)
    big_reply: list[Any] = []
    content = "word " * 200_000  # 1 MB of text
    worker = threading.Thread(
        target=lambda: big_reply.append(
            finetune_emulator.client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
            )
        )
    )
    worker.start()
    try:
        assert entered.wait(30), "the big chat request never reached the answerer"
        quick = finetune_emulator.client(timeout=5.0, max_retries=0)
        assert quick.models.list().data  # answered while the big request is still in progress
        assert not big_reply
    finally:
        release.set()
        worker.join(30)
    assert big_reply and big_reply[0].usage.prompt_tokens > 200_000


class ContendedLock:
    """The store's lock, telling when a second thread has to wait for it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.contended = inner, threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.inner.acquire(blocking=False):
            return True
        self.contended.set()
        return bool(self.inner.acquire(blocking, timeout))

    def release(self) -> None:
        self.inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_request_waiting_for_the_store_does_not_stall_the_server(
    finetune_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a long job validation holds the store's lock; requests that need the store wait in worker threads
    lock = ContendedLock(finetune_emulator.core.store.lock)
    monkeypatch.setattr(finetune_emulator.core.store, "lock", lock)
    store_free, waiting_done = threading.Event(), threading.Event()
    holding = threading.Event()

    def hold_the_store() -> None:
        with lock:
            holding.set()
            store_free.wait(30)

    holder = threading.Thread(target=hold_the_store)

    def list_jobs() -> None:
        finetune_emulator.client().fine_tuning.jobs.list()
        waiting_done.set()

    waiter = threading.Thread(target=list_jobs)
    try:
        holder.start()
        assert holding.wait(30)
        waiter.start()
        assert lock.contended.wait(30), "the request never reached the store"
        assert httpx.get(finetune_emulator.url + "/_emulator/health", timeout=5).json() == {"ok": True}
        assert not waiting_done.is_set()
    finally:
        store_free.set()
        holder.join(30)
        waiter.join(30)
    assert waiting_done.is_set()


# --- uploads on disk ---------------------------------------------------------------------------------------
def test_upload_parts_go_to_disk_and_are_joined_on_disk(finetune_emulator: Emulator) -> None:
    client = finetune_emulator.client()
    store = finetune_emulator.core.store
    part = os.urandom(8 * MB)
    up = client.uploads.create(
        bytes=4 * len(part), filename="big.jsonl", purpose="fine-tune", mime_type="text/jsonl"
    )
    ids = []
    for _ in range(4):
        tracemalloc.start()
        try:
            ids.append(client.uploads.parts.create(up.id, data=part).id)
            part_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert part_peak < 4 * MB, f"adding an 8 MB part took {part_peak / MB:.1f} MB"
    assert all(store.blob_path(i).stat().st_size == len(part) for i in ids)
    tracemalloc.start()
    try:
        done = client.uploads.complete(up.id, part_ids=ids)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB, f"completing a 32 MB upload took {peak / MB:.1f} MB (parts joined in memory?)"
    assert done.status == "completed" and done.file is not None and done.file.bytes == 4 * len(part)
    assert client.files.content(done.file.id).content == part * 4
    assert not any(store.blob_path(i).exists() for i in ids)  # the parts are gone once joined


# --- 400 for bodies the real API refuses ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/fine_tuning/jobs", "/v1/uploads"])
def test_deeply_nested_json_is_400_not_500(finetune_emulator: Emulator, path: str) -> None:
    nested = '{"model": "gpt-4o-mini", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply = httpx.post(
        finetune_emulator.url + path,
        content=nested,
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
    )
    err = assert_error_shape(reply.json())
    assert reply.status_code == 400 and err["type"] == "invalid_request_error" and "nested" in err["message"]


def _chat(emu: Emulator, messages: Any) -> httpx.Response:
    return httpx.post(
        emu.base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": messages},
        headers={"Authorization": "Bearer sk-test"},
    )


@pytest.mark.parametrize(
    ("messages", "param", "code"),
    [
        ([{"role": "user", "content": 42}], "messages[0].content", "invalid_type"),
        ([{"role": "user", "content": {"text": "hi"}}], "messages[0].content", "invalid_type"),
        ([{"role": "user", "content": ["hi"]}], "messages[0].content[0]", "invalid_type"),
        (
            [{"role": "user", "content": [{"text": "hi"}]}],
            "messages[0].content[0].type",
            "missing_required_parameter",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            "messages[0].content[0].text",
            "invalid_type",
        ),
        ([{"content": "hi"}], "messages[0].role", "missing_required_parameter"),
        (
            [{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}],
            "messages[1].role",
            "invalid_value",
        ),
        ([{"role": "user"}], "messages[0].content", "missing_required_parameter"),
        (["hi"], "messages[0]", "invalid_type"),
        ({"role": "user"}, "messages", "invalid_type"),
    ],
)
def test_bad_chat_messages_are_400_naming_the_field(
    finetune_emulator: Emulator, messages: Any, param: str, code: str
) -> None:
    reply = _chat(finetune_emulator, messages)
    err = assert_error_shape(reply.json())
    assert reply.status_code == 400, reply.json()
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert param in err["message"] or "Invalid value" in err["message"]


def test_good_chat_message_shapes_are_still_answered(finetune_emulator: Emulator) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Answer Yes or No."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Is it?"}, {"type": "image_url", "image_url": {}}],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "content": "done", "tool_call_id": "c"},
        {"role": "developer", "content": "be brief"},
    ]
    reply = _chat(finetune_emulator, messages)
    assert reply.status_code == 200, reply.json()


def test_a_text_plain_body_is_400(finetune_emulator: Emulator) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    reply = httpx.post(
        finetune_emulator.base_url + "/chat/completions",
        content=body,
        headers={"Authorization": "Bearer sk-test", "Content-Type": "text/plain"},
    )
    err = assert_error_shape(reply.json())
    assert (
        reply.status_code == 400
        and err["code"] == "unsupported_content_type"
        and "text/plain" in err["message"]
    )
