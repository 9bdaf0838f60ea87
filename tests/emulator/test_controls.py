"""Emulator test controls and the less common endpoints: uploads, faults, rate limits, latency, pause,
the manual clock, persistence, admin routes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from finetune_wb.emulator import Emulator, ManualClock, run_emulator
from finetune_wb.errors import EmulatorError
from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples

BASE = "gpt-4o-mini-2024-07-18"


def test_uploads_api(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    data = jsonl(yes_no_examples(20))
    up = client.uploads.create(
        bytes=len(data), filename="big.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    assert up.status == "pending" and up.object == "upload"
    half = len(data) // 2
    p1 = client.uploads.parts.create(up.id, data=data[:half])
    p2 = client.uploads.parts.create(up.id, data=data[half:])
    assert p1.object == "upload.part" and p1.upload_id == up.id
    done = client.uploads.complete(up.id, part_ids=[p1.id, p2.id])
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == len(data) and done.file.purpose == "fine-tune"
    assert client.files.content(done.file.id).content == data
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=[p1.id, p2.id])

    short = client.uploads.create(
        bytes=len(data) + 1, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    part = client.uploads.parts.create(short.id, data=data)
    with pytest.raises(openai.BadRequestError) as info:
        client.uploads.complete(short.id, part_ids=[part.id])
    assert info.value.code == "upload_size_mismatch"  # type: ignore[attr-defined]
    for bad_ids in ([{"id": part.id}], part.id, []):
        with pytest.raises(openai.BadRequestError) as info:
            client.uploads.complete(short.id, part_ids=bad_ids)  # type: ignore[arg-type]
        assert info.value.param == "part_ids"  # type: ignore[attr-defined]
    assert client.uploads.cancel(short.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(short.id, data=b"more")
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_nope")


def test_files_list_filters_and_pages(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    ids = [client.files.create(file=(f"{i}.jsonl", b"{}\n"), purpose="fine-tune").id for i in range(3)]
    other = client.files.create(file=("a.txt", b"x"), purpose="assistants").id
    assert [f.id for f in client.files.list(purpose="fine-tune")] == ids[::-1]
    assert [f.id for f in client.files.list(limit=1)] == [other, *ids[::-1]]
    assert [f.id for f in client.files.list(order="asc", purpose="fine-tune")] == ids


def test_injected_429_and_500_are_retried_by_the_client(finetune_emulator: Emulator) -> None:
    client = finetune_emulator.client(max_retries=2)
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
    finetune_emulator.inject_fault("/v1/fine_tuning/jobs", "POST", status=429, count=2, retry_after_ms=5)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    creates = [(e.status, e.fault) for e in finetune_emulator.journal if e.path == "/v1/fine_tuning/jobs"]
    assert creates == [(429, "fault"), (429, "fault"), (200, None)]
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]

    finetune_emulator.inject_fault("/v1/fine_tuning/jobs/*", "GET", status=500, count=1, retry_after_ms=5)
    assert client.fine_tuning.jobs.retrieve(job.id).id == job.id
    assert [e.status for e in finetune_emulator.journal if e.method == "GET"][-2:] == [500, 200]

    finetune_emulator.inject_fault("/v1/models", "GET", status=503, count=3, retry_after_ms=5)
    with pytest.raises(openai.InternalServerError):
        client.models.list()


def test_fault_after_handler_shows_why_retried_posts_duplicate(finetune_emulator: Emulator) -> None:
    client = finetune_emulator.client(max_retries=1)
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
    finetune_emulator.inject_fault(status=500, count=1, retry_after_ms=5, after_handler=True)
    client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    assert len(client.fine_tuning.jobs.list().data) == 2  # the work happened twice


def test_fault_probability_and_unlimited_count(finetune_emulator: Emulator) -> None:
    client = finetune_emulator.client(max_retries=0)
    finetune_emulator.inject_fault("/v1/models", "GET", status=500, count=None, probability=0.5)
    outcomes = []
    for _ in range(40):
        try:
            client.models.list()
            outcomes.append(True)
        except openai.InternalServerError:
            outcomes.append(False)
    assert 5 < sum(outcomes) < 35
    with pytest.raises(EmulatorError):
        finetune_emulator.inject_fault(status=200)


def test_rate_limit_answers_429_with_retry_after_ms(finetune_emulator: Emulator) -> None:
    clock_client = finetune_emulator.client(max_retries=0)
    finetune_emulator.rate_limit(rpm=2)
    msgs = [{"role": "user", "content": "Yes or no?"}]
    for remaining in ("1", "0"):
        ok = clock_client.chat.completions.with_raw_response.create(model=BASE, messages=msgs)  # type: ignore[arg-type]
        assert ok.headers["x-ratelimit-limit-requests"] == "2"
        assert ok.headers["x-ratelimit-remaining-requests"] == remaining
    with pytest.raises(openai.RateLimitError) as info:
        clock_client.chat.completions.create(model=BASE, messages=msgs)  # type: ignore[arg-type]
    wait_ms = int(info.value.response.headers["retry-after-ms"])
    assert 0 < wait_ms <= 60_000
    assert info.value.code == "rate_limit_exceeded"  # type: ignore[attr-defined]
    clock_client.models.list()  # other routes are not limited
    finetune_emulator.rate_limit(rpm=None)
    clock_client.chat.completions.create(model=BASE, messages=msgs)  # type: ignore[arg-type]


def test_rate_limit_window_follows_the_manual_clock() -> None:
    clock = ManualClock()
    with run_emulator(clock=clock) as emu:
        client = emu.client(max_retries=0)
        emu.rate_limit(rpm=1, path="/v1/models")
        client.models.list()
        with pytest.raises(openai.RateLimitError):
            client.models.list()
        clock.advance(60.5)
        client.models.list()


def test_latency_is_added(finetune_emulator: Emulator, finetune_emulator_client: openai.OpenAI) -> None:
    finetune_emulator.inject_latency(0.15, path="/v1/models")
    start = time.perf_counter()
    finetune_emulator_client.models.list()
    assert time.perf_counter() - start >= 0.15
    start = time.perf_counter()
    finetune_emulator_client.files.list()
    assert time.perf_counter() - start < 0.15


def test_fail_job(finetune_emulator: Emulator, finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    finetune_emulator.pace = 100.0
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    finetune_emulator.fail_job(job.id, code="server_error", message="GPU on fire")
    failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.error.message) == ("server_error", "GPU on fire")
    with pytest.raises(EmulatorError):
        finetune_emulator.fail_job(job.id)


def test_lifecycle_on_a_manual_clock_with_pause_and_resume() -> None:
    clock = ManualClock()
    with run_emulator(clock=clock) as emu:
        client = emu.client()
        start = clock.now()
        train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(100))), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model=BASE, training_file=train.id, hyperparameters={"n_epochs": 3}
        )
        assert client.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
        clock.advance(1.0)
        assert client.fine_tuning.jobs.retrieve(job.id).status == "queued"
        clock.advance(1.0)
        running = client.fine_tuning.jobs.retrieve(job.id)
        assert running.status == "running" and running.estimated_finish is not None
        clock.advance(1.0)
        steps = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
        assert 0 < len(steps) < 300
        with pytest.raises(openai.BadRequestError):
            client.fine_tuning.jobs.resume(job.id)
        assert client.fine_tuning.jobs.pause(job.id).status == "paused"
        clock.advance(1000.0)
        paused_steps = [
            e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"
        ]
        assert len(paused_steps) == len(steps)
        assert client.fine_tuning.jobs.resume(job.id).status == "running"
        clock.advance(10.0)
        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded"
        # default pace: a 100-example, 3-epoch job takes under 10 s of (non-paused) clock time
        assert (done.finished_at or 0) - start - 1000 < 10
        metrics = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
        assert len(metrics) == 300


def test_persistence_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock()
    examples = yes_no_examples(10)
    with run_emulator(clock=clock, persist_dir=tmp_path) as emu:
        client = emu.client()
        train = client.files.create(file=("t.jsonl", jsonl(examples)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id, suffix="kept")
        clock.advance(30)
        model = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
        assert model is not None
        n_events = len(list(client.fine_tuning.jobs.list_events(job.id, limit=100)))
    with run_emulator(clock=clock, persist_dir=tmp_path) as emu:
        client = emu.client()
        assert client.files.content(train.id).content == jsonl(examples)
        again = client.fine_tuning.jobs.retrieve(job.id)
        assert again.status == "succeeded" and again.fine_tuned_model == model
        assert len(list(client.fine_tuning.jobs.list_events(job.id, limit=100))) == n_events
        reply = client.chat.completions.create(model=model, messages=examples[3]["messages"][:2])
        assert reply.choices[0].message.content == examples[3]["messages"][2]["content"]
        emu.reset()
        assert client.files.list().data == []
    with run_emulator(clock=clock, persist_dir=tmp_path) as emu:
        assert emu.client().fine_tuning.jobs.list().data == []


def test_admin_routes(finetune_emulator: Emulator) -> None:
    admin = finetune_emulator.url + "/_emulator"
    client = finetune_emulator.client(max_retries=0)
    assert httpx.get(admin + "/health").json() == {"ok": True}
    r = httpx.post(
        admin + "/faults", json={"path": "/v1/models", "method": "GET", "status": 429, "retry_after_ms": 20}
    )
    assert r.status_code == 200 and r.json()["faults"][0]["status"] == 429
    with pytest.raises(openai.RateLimitError) as info:
        client.models.list()
    assert info.value.response.headers["retry-after-ms"] == "20"
    client.models.list()
    journal = httpx.get(admin + "/journal").json()["data"]
    assert [(e["path"], e["status"]) for e in journal] == [("/v1/models", 429), ("/v1/models", 200)]
    assert httpx.post(admin + "/faults", json={"status": 200}).status_code == 400
    # defaults as in inject_fault: the next POST /v1/fine_tuning/jobs, nothing else
    httpx.post(admin + "/faults", json={"status": 500}).raise_for_status()
    client.models.list()
    with pytest.raises(openai.InternalServerError):
        client.fine_tuning.jobs.create(model=BASE, training_file="file-x")
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(model=BASE, training_file="file-x")
    httpx.post(
        admin + "/faults", json={"path": "/v1/models", "method": None, "status": 503}
    ).raise_for_status()
    with pytest.raises(openai.InternalServerError):
        client.models.list()
    httpx.post(admin + "/rate_limit", json={"rpm": 1, "path": "/v1/files"}).raise_for_status()
    client.files.list()
    with pytest.raises(openai.RateLimitError):
        client.files.list()
    assert httpx.post(admin + "/clock/advance", json={"seconds": 1}).status_code == 400
    httpx.post(admin + "/reset").raise_for_status()
    assert finetune_emulator.journal == []
    client.files.list()
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
    finetune_emulator.pace = 100.0
    job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    r = httpx.post(f"{admin}/jobs/{job.id}/fail", json={"code": 7})
    assert r.status_code == 400 and r.json()["error"]["param"] == "code"
    r = httpx.post(f"{admin}/jobs/{job.id}/fail", json={"code": "quota", "message": "out of quota"})
    assert r.json()["status"] == "failed"
    assert client.fine_tuning.jobs.retrieve(job.id).error.code == "quota"  # type: ignore[union-attr]


def test_unknown_route_and_bad_json(finetune_emulator: Emulator) -> None:
    h = {"Authorization": "Bearer sk-test"}
    r = httpx.get(finetune_emulator.base_url + "/nothing", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = httpx.post(finetune_emulator.base_url + "/fine_tuning/jobs", headers=h, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_wait_helper_sees_a_fast_job(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(100))), purpose="fine-tune")
    start = time.perf_counter()
    job = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=train.id).id)
    assert job.status == "succeeded"
    assert time.perf_counter() - start < 5  # fast test pace


def test_bad_emulator_arguments(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError):
        Emulator(pace=0)
    with run_emulator() as emu, pytest.raises(EmulatorError, match=r"port is in use.*--port 0"):
        Emulator(port=emu.port).start()
    with pytest.raises(EmulatorError, match="between 0 and 65535"):
        Emulator(port=70000)
    not_a_dir = tmp_path / "state.txt"
    not_a_dir.write_text("x")
    with pytest.raises(EmulatorError, match=r"persist_dir.*state\.txt.*writable directory"):
        Emulator(persist_dir=not_a_dir)


def test_objects_validate_strictly_against_the_openai_types(finetune_emulator: Emulator) -> None:
    """The raw JSON (not the client's lenient construct) validates against openai's pydantic types."""
    from openai.types import FileDeleted, FileObject, Model, ModelDeleted, Upload
    from openai.types.chat import ChatCompletion
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
    from openai.types.uploads import UploadPart

    client = finetune_emulator.client()
    raw = client.with_raw_response
    data = jsonl(yes_no_examples(10))
    file = FileObject.model_validate(
        raw.files.create(file=("t.jsonl", data), purpose="fine-tune").http_response.json()
    )
    valid = client.files.create(file=("v.jsonl", jsonl(yes_no_examples(10, offset=30))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=file.id,
        validation_file=valid.id,
        seed=7,
        suffix="shape",
        integrations=[{"type": "wandb", "wandb": {"project": "p", "tags": ["t"]}}],
        metadata={"k": "v"},
    )
    done = wait_job(client, job.id)
    FineTuningJob.model_validate(raw.fine_tuning.jobs.retrieve(done.id).http_response.json())
    for event in raw.fine_tuning.jobs.list_events(done.id, limit=100).http_response.json()["data"]:
        FineTuningJobEvent.model_validate(event)
    for ckpt in raw.fine_tuning.jobs.checkpoints.list(done.id).http_response.json()["data"]:
        FineTuningJobCheckpoint.model_validate(ckpt)
    for listed in raw.files.list().http_response.json()["data"]:
        FileObject.model_validate(listed)
    Model.model_validate(raw.models.retrieve(done.fine_tuned_model or "").http_response.json())
    ChatCompletion.model_validate(
        raw.chat.completions.create(
            model=done.fine_tuned_model or "", messages=[{"role": "user", "content": "x"}]
        ).http_response.json()
    )
    ModelDeleted.model_validate(raw.models.delete(done.fine_tuned_model or "").http_response.json())
    up = Upload.model_validate(
        raw.uploads.create(
            bytes=len(data), filename="u.jsonl", mime_type="text/jsonl", purpose="fine-tune"
        ).http_response.json()
    )
    part = UploadPart.model_validate(raw.uploads.parts.create(up.id, data=data).http_response.json())
    Upload.model_validate(raw.uploads.complete(up.id, part_ids=[part.id]).http_response.json())
    FileDeleted.model_validate(raw.files.delete(valid.id).http_response.json())
    for listed_job in raw.fine_tuning.jobs.list().http_response.json()["data"]:
        FineTuningJob.model_validate(listed_job)
    for listed_model in raw.models.list().http_response.json()["data"]:
        Model.model_validate(listed_model)
    other = client.uploads.create(bytes=1, filename="c.jsonl", mime_type="text/jsonl", purpose="fine-tune")
    Upload.model_validate(raw.uploads.cancel(other.id).http_response.json())
    finetune_emulator.pace = 100.0
    pending = client.fine_tuning.jobs.create(model=BASE, training_file=file.id)
    FineTuningJob.model_validate(raw.fine_tuning.jobs.cancel(pending.id).http_response.json())
    assert done.integrations is not None and done.integrations[0].wandb.project == "p"
    assert done.seed == 7


def test_azure_openai_client_works_against_the_emulator(finetune_emulator: Emulator) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=finetune_emulator.url, api_key="azure-key", api_version="2024-10-21"
    )
    examples = yes_no_examples(10)
    train = client.files.create(file=("t.jsonl", jsonl(examples)), purpose="fine-tune")
    job = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=train.id).id)
    assert job.status == "succeeded"
    reply = client.chat.completions.create(
        model=job.fine_tuned_model or "", messages=examples[5]["messages"][:2]
    )
    assert reply.choices[0].message.content == examples[5]["messages"][2]["content"]
    assert {e.path for e in finetune_emulator.journal} >= {"/v1/files", "/v1/chat/completions"}
    assert all(e.status == 200 for e in finetune_emulator.journal)


def test_missing_server_dependencies_give_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "python_multipart" else real(name, *a)
    )
    with pytest.raises(EmulatorError, match=r"finetune-wb\[emulator\]"):
        Emulator().start()


def test_corrupt_persisted_state_is_reported(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(EmulatorError, match="not a valid emulator state file"):
        Emulator(persist_dir=tmp_path)


def test_admin_routes_reject_bad_settings_with_400_and_the_reason(finetune_emulator: Emulator) -> None:
    admin = finetune_emulator.url + "/_emulator"
    bad = [
        ("/rate_limit", {"rpm": "many"}, "rpm"),
        ("/faults", {"status": 429, "count": 0}, "count"),
        ("/faults", {"status": 500, "probability": 3}, "probability"),
        ("/faults", {"status": 429, "retry_after_ms": -1}, "retry_after_ms"),
        ("/latency", {"seconds": -1}, "seconds"),
    ]
    for route, body, word in bad:
        r = httpx.post(admin + route, json=body)
        assert r.status_code == 400, (route, body, r.text)
        assert word in r.json()["error"]["message"] and "\n" not in r.json()["error"]["message"]
    assert httpx.get(admin + "/state").json()["faults"] == []
    with pytest.raises(EmulatorError, match="seconds"):
        finetune_emulator.inject_latency(-0.5)
    with pytest.raises(EmulatorError, match="count"):
        finetune_emulator.inject_fault(count=0)
    with pytest.raises(EmulatorError, match="rpm"):
        finetune_emulator.rate_limit(rpm=1.5)  # type: ignore[arg-type]


def test_admin_latency_and_clock_routes_work() -> None:
    clock = ManualClock()
    with run_emulator(clock=clock) as emu:
        admin = emu.url + "/_emulator"
        client = emu.client(max_retries=0)
        train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
        r = httpx.post(admin + "/clock/advance", json={"seconds": 60})
        assert r.status_code == 200 and r.json()["now"] == clock.now()
        assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
        for seconds in (-1, "soon"):
            r = httpx.post(admin + "/clock/advance", json={"seconds": seconds})
            assert r.status_code == 400 and r.json()["error"]["param"] == "seconds"
        httpx.post(admin + "/latency", json={"seconds": 0.2, "path": "/v1/models"}).raise_for_status()
        start = time.perf_counter()
        client.models.list()
        assert time.perf_counter() - start >= 0.2
        start = time.perf_counter()
        client.files.list()
        assert time.perf_counter() - start < 0.2


def test_injected_409_is_retried_by_the_client(finetune_emulator: Emulator) -> None:
    client = finetune_emulator.client(max_retries=2)
    finetune_emulator.inject_fault("/v1/models", "GET", status=409, count=2, retry_after_ms=1)
    assert client.models.list().data
    assert [e.status for e in finetune_emulator.journal] == [409, 409, 200]
    finetune_emulator.inject_fault("/v1/models", "GET", status=409, count=1)
    with pytest.raises(openai.ConflictError) as info:
        finetune_emulator.client(max_retries=0).models.list()
    assert set(info.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


def test_a_bad_validation_file_fails_the_job_with_param_validation_file(
    finetune_emulator_client: openai.OpenAI,
) -> None:
    client = finetune_emulator_client
    train = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(10))), purpose="fine-tune")
    good = jsonl(yes_no_examples(6, offset=50)).decode().splitlines()
    bad = [*good[:2], '{"messages": [{"role": "user", "content": "unanswered"}]}', *good[2:]]
    valid = client.files.create(file=("v.jsonl", "\n".join(bad).encode()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id, validation_file=valid.id)
    job = wait_job(client, job.id)
    assert job.status == "failed" and job.error is not None
    assert (job.error.param, job.error.code) == ("validation_file", "invalid_validation_file")
    assert "line 3" in job.error.message and valid.id in job.error.message
