"""Unit tests for jobs/waiting/events against a small in-memory fake of the openai client.

The fake lets a test script exact failure orders (a 500 after the job was created, a server that ignores
the metadata filter, events arriving across several pages) that are awkward to produce over HTTP. The
same behaviours are also checked end to end against the emulator in tests/test_jobs.py.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.errors import ConfigError, JobCancelled, JobError, JobFailed, JobTimeout
from finetune_wb.jobs.events import EventCursor, JobEvent, parse_metrics
from finetune_wb.jobs.operations import (
    REQUEST_ID_KEY,
    cancel_job,
    create_job,
    find_job_by_request_id,
    list_checkpoints,
    list_jobs,
)
from finetune_wb.jobs.result_file import job_metrics, parse_result_file
from finetune_wb.jobs.waiting import wait_for_job


def _error(status: int) -> openai.APIError:
    if status == 0:  # a dropped connection: no status at all
        return openai.APITimeoutError(request=httpx2.Request("POST", "http://fake.test/v1/x"))
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://fake.test/v1/x"))
    cls = {400: openai.BadRequestError, 404: openai.NotFoundError, 429: openai.RateLimitError}.get(
        status, openai.InternalServerError
    )
    return cls(f"fake {status}", response=response, body=None)


def _page(items: list[Any], *, after: str | None, limit: int | None) -> SimpleNamespace:
    """Newest-first cursor pagination like the API: ``after`` = the last id of the previous page."""
    start = 0
    if after is not None:
        start = next(i for i, item in enumerate(items) if item.id == after) + 1
    limit = limit or 20
    chunk = items[start : start + limit]
    return SimpleNamespace(data=chunk, has_more=start + limit < len(items))


@dataclass
class FakeJob:
    id: str
    created_at: int
    model: str
    training_file: str
    metadata: dict[str, str] | None
    status: str = "validating_files"
    error: Any = None
    fine_tuned_model: str | None = None
    result_files: list[str] = field(default_factory=list)
    trained_tokens: int | None = None
    visible_at: float = 0.0  # when the job starts to show up in job lists (see FakeServer.list_lag)


class FakeServer:
    """State shared by every ``with_options`` copy of the fake client."""

    def __init__(self, *, total_steps: int = 4, rng_faults: float = 0.0, seed: int = 0) -> None:
        self.jobs: list[FakeJob] = []  # newest first
        self.events: dict[str, list[SimpleNamespace]] = {}  # newest first
        self.files: dict[str, bytes] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.total_steps = total_steps
        self.create_faults: list[tuple[int, bool]] = []  # (status, after_handler)
        self.ignore_metadata_filter = False
        self.reject_metadata_filter = False
        self.fail_with: tuple[str, str] | None = None
        self.cancel_at_tick: int | None = None
        self.ticks: dict[str, int] = {}
        self.rng = random.Random(seed)
        self.rng_faults = rng_faults
        self.max_retries_seen: list[int] = []
        self.now = 0.0  # advanced by the tests' injected sleep
        self.list_lag = 0.0  # seconds before a new job appears in job lists (eventual consistency)

    def maybe_fault(self) -> None:
        if self.rng_faults and self.rng.random() < self.rng_faults:
            raise _error(self.rng.choice([429, 500]))

    def add_event(self, job_id: str, message: str, *, data: dict[str, Any] | None = None) -> None:
        events = self.events.setdefault(job_id, [])
        events.insert(
            0,
            SimpleNamespace(
                id=f"ftevent-{job_id[-4:]}-{len(events):04d}",
                created_at=1_700_000_000 + len(events),
                level="info",
                message=message,
                object="fine_tuning.job.event",
                type="metrics" if data else "message",
                data=data,
            ),
        )

    def advance(self, job: FakeJob) -> None:
        """One lifecycle tick per retrieve: validating -> queued -> running (one step per tick) -> end."""
        tick = self.ticks[job.id] = self.ticks.get(job.id, 0) + 1
        if job.status in ("succeeded", "failed", "cancelled"):
            return
        if self.cancel_at_tick is not None and tick >= self.cancel_at_tick:
            job.status = "cancelled"
            self.add_event(job.id, "Job cancelled")
            return
        if tick == 1:
            job.status = "queued"
            self.add_event(job.id, "Files validated")
        elif tick == 2:
            job.status = "running"
            self.add_event(job.id, "Fine-tuning job started")
        else:
            step = tick - 2
            if self.fail_with is not None and step == 2:
                job.status = "failed"
                job.error = SimpleNamespace(code=self.fail_with[0], message=self.fail_with[1], param=None)
                self.add_event(job.id, f"Job failed: {self.fail_with[1]}")
                return
            data = {"step": step, "train_loss": 1.0 / step, "total_steps": self.total_steps}
            self.add_event(
                job.id, f"Step {step}/{self.total_steps}: training loss={1.0 / step:.4f}", data=data
            )
            if step >= self.total_steps:
                job.status = "succeeded"
                job.fine_tuned_model = f"ft:{job.model}:fake:{job.id[-4:]}"
                csv_text = "step,train_loss,valid_loss\n1,1.0,\n2,0.5,0.6\n"
                file_id = f"file-result-{job.id[-4:]}"
                self.files[file_id] = base64.b64encode(csv_text.encode())
                job.result_files = [file_id]
                self.add_event(job.id, "The job has successfully completed")


class FakeClient:
    def __init__(self, server: FakeServer, max_retries: int = 2) -> None:
        self.server = server
        self.max_retries = max_retries
        self.base_url = "http://fake.test/v1"
        checkpoints = SimpleNamespace(list=self._list_checkpoints)
        self.fine_tuning = SimpleNamespace(
            jobs=SimpleNamespace(
                create=self._create,
                retrieve=self._retrieve,
                list=self._list,
                list_events=self._list_events,
                cancel=self._cancel,
                checkpoints=checkpoints,
            )
        )
        self.files = SimpleNamespace(content=self._content)

    def with_options(self, **kwargs: Any) -> FakeClient:
        self.server.max_retries_seen.append(kwargs.get("max_retries", self.max_retries))
        return FakeClient(self.server, kwargs.get("max_retries", self.max_retries))

    def _create(self, **params: Any) -> FakeJob:
        s = self.server
        s.calls.append(("create", params))
        fault = s.create_faults.pop(0) if s.create_faults else None
        if fault is not None and not fault[1]:
            raise _error(fault[0])
        job = FakeJob(
            id=f"ftjob-{len(s.jobs):04d}",
            created_at=1_700_000_000 + len(s.jobs),
            model=params["model"],
            training_file=params["training_file"],
            metadata=params.get("metadata"),
            visible_at=s.now + s.list_lag,
        )
        s.jobs.insert(0, job)
        s.add_event(job.id, "Created fine-tuning job")
        if fault is not None:
            raise _error(fault[0])
        return job

    def _find(self, job_id: str) -> FakeJob:
        for job in self.server.jobs:
            if job.id == job_id:
                return job
        raise _error(404)

    def _retrieve(self, job_id: str) -> FakeJob:
        self.server.calls.append(("retrieve", {"job_id": job_id}))
        self.server.maybe_fault()
        job = self._find(job_id)
        self.server.advance(job)
        return job

    def _list(self, *, after: str | None = None, limit: int | None = None, metadata: Any = None) -> Any:
        s = self.server
        s.calls.append(("list", {"after": after, "limit": limit, "metadata": metadata}))
        s.maybe_fault()
        jobs = [j for j in s.jobs if j.visible_at <= s.now]
        if metadata:
            if s.reject_metadata_filter:
                raise _error(400)
            if not s.ignore_metadata_filter:
                jobs = [j for j in jobs if all((j.metadata or {}).get(k) == v for k, v in metadata.items())]
        return _page(jobs, after=after, limit=limit)

    def _list_events(self, job_id: str, *, after: str | None = None, limit: int | None = None) -> Any:
        self.server.calls.append(("list_events", {"after": after, "limit": limit}))
        self.server.maybe_fault()
        return _page(self.server.events.get(job_id, []), after=after, limit=limit)

    def _cancel(self, job_id: str) -> FakeJob:
        job = self._find(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            raise _error(400)
        job.status = "cancelled"
        return job

    def _list_checkpoints(self, job_id: str, *, after: str | None = None, limit: int | None = None) -> Any:
        items = [SimpleNamespace(id=f"ftckpt-{i}", step_number=10 * i) for i in range(5, 0, -1)]
        return _page(items, after=after, limit=limit)

    def _content(self, file_id: str) -> Any:
        return SimpleNamespace(content=self.server.files[file_id])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


NO_JITTER = RetryPolicy(max_attempts=8, initial_wait=0.01, jitter=False, sleep=lambda _s: None)


# --------------------------------------------------------------------------------------------- events


def test_job_event_parses_metrics_data() -> None:
    raw = {
        "id": "ev-1",
        "created_at": 5,
        "level": "info",
        "message": "Step 3/10: training loss=0.5",
        "type": "metrics",
        "data": {
            "step": 3,
            "train_loss": "0.5",
            "train_mean_token_accuracy": 0.8,
            "total_steps": 10,
            "x": None,
        },
    }
    event = JobEvent.from_openai(raw, job_id="ftjob-1")
    assert event.step == 3
    assert event.metrics == {"train_loss": 0.5, "train_mean_token_accuracy": 0.8, "total_steps": 10.0}
    assert event.total_steps == 10 and event.is_metrics and event.job_id == "ftjob-1"


def test_job_event_falls_back_to_message_text() -> None:
    step, metrics = parse_metrics(None, "Step 7/20: training loss=0.25, validation loss=0.40")
    assert step == 7
    assert metrics == {"total_steps": 20.0, "train_loss": 0.25, "valid_loss": 0.40}
    assert parse_metrics({"foo": 1}, "Fine-tuning job started") == (None, {})


# --------------------------------------------------------------------------------------------- metrics file


def test_parse_result_file_plain_and_base64() -> None:
    text = "step,train_loss,train_accuracy,valid_loss\n1,2.5,0.1,\n2,1.5,0.4,1.9\n"
    plain = parse_result_file(text.encode())
    assert plain == [
        {"step": 1, "train_loss": 2.5, "train_accuracy": 0.1},
        {"step": 2, "train_loss": 1.5, "train_accuracy": 0.4, "valid_loss": 1.9},
    ]
    assert isinstance(plain[0]["step"], int)
    assert parse_result_file(base64.b64encode(text.encode())) == plain
    with pytest.raises(JobError, match="neither CSV nor base64"):
        parse_result_file(b"@@not csv or base64@@")


# --------------------------------------------------------------------------------------------- create


def _spec() -> dict[str, Any]:
    return {"model": "gpt-4o-mini-2024-07-18", "metadata": {"team": "legal"}}


def test_create_job_tags_request_and_disables_client_retries() -> None:
    server = FakeServer()
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    creates = [c for c in server.calls if c[0] == "create"]
    assert len(creates) == 1
    metadata = creates[0][1]["metadata"]
    assert metadata["team"] == "legal" and len(metadata[REQUEST_ID_KEY]) == 32
    assert job.metadata == metadata
    assert 0 in server.max_retries_seen


def test_create_job_adopts_job_created_before_a_500() -> None:
    server = FakeServer()
    server.create_faults = [(500, True)]  # the server makes the job, then answers 500
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    assert len(server.jobs) == 1 and job.id == server.jobs[0].id
    assert sum(1 for c in server.calls if c[0] == "create") == 1


def test_create_job_waits_before_looking_so_a_lagging_job_list_still_finds_the_job() -> None:
    server = FakeServer()
    server.create_faults = [(500, True)]
    server.list_lag = 0.5  # the new job shows up in lists half a second after it was made

    def sleep(seconds: float) -> None:
        server.now += seconds

    policy = RetryPolicy(max_attempts=4, initial_wait=1.0, jitter=False, sleep=sleep)
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=policy, sleep=sleep)  # type: ignore[arg-type]
    assert len(server.jobs) == 1 and job.id == server.jobs[0].id
    assert sum(1 for c in server.calls if c[0] == "create") == 1


def test_create_job_looks_once_more_after_the_last_attempt() -> None:
    server = FakeServer()
    server.create_faults = [(500, False), (500, True)]  # the second (last allowed) attempt made the job
    policy = RetryPolicy(max_attempts=2, initial_wait=0.01, jitter=False, sleep=lambda _s: None)
    job = create_job(
        _spec(), training_file="file-abc", client=FakeClient(server), retry=policy, sleep=lambda _s: None
    )  # type: ignore[arg-type]
    assert len(server.jobs) == 1 and job.id == server.jobs[0].id


def test_create_job_adopts_job_after_a_timeout() -> None:
    server = FakeServer()
    server.create_faults = [(0, True)]  # created, but the answer never arrived
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    assert len(server.jobs) == 1 and job.id == server.jobs[0].id


def test_create_job_retries_when_nothing_was_created() -> None:
    server = FakeServer()
    server.create_faults = [(429, False), (503, False)]
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    assert len(server.jobs) == 1 and job.id == server.jobs[0].id
    assert sum(1 for c in server.calls if c[0] == "create") == 3


def test_create_job_does_not_retry_a_bad_request() -> None:
    server = FakeServer()
    server.create_faults = [(400, False)]
    with pytest.raises(openai.BadRequestError):
        create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    assert sum(1 for c in server.calls if c[0] == "create") == 1 and not server.jobs


@pytest.mark.parametrize("mode", ["ignore", "reject"])
def test_create_job_scans_when_server_lacks_metadata_filter(mode: str) -> None:
    server = FakeServer()
    server.ignore_metadata_filter = mode == "ignore"
    server.reject_metadata_filter = mode == "reject"
    client = FakeClient(server)
    for i in range(30):  # other people's jobs, so the tagged one is not the newest
        client._create(model="m", training_file=f"file-{i}", metadata={"other": str(i)})
    server.create_faults = [(502, True)]
    job = create_job(_spec(), training_file="file-abc", client=client, retry=NO_JITTER)  # type: ignore[arg-type]
    assert len(server.jobs) == 31 and job.training_file == "file-abc"
    server.jobs.insert(5, server.jobs.pop(0))  # bury it under newer jobs
    found = find_job_by_request_id(job.metadata[REQUEST_ID_KEY], client=client, retry=NO_JITTER)  # type: ignore[arg-type,index]
    assert found is not None and found.id == job.id


def test_create_job_with_a_known_request_id_adopts_before_creating() -> None:
    server = FakeServer()
    client = FakeClient(server)
    first = create_job(_spec(), training_file="file-abc", client=client, request_id="req-1", retry=NO_JITTER)  # type: ignore[arg-type]
    again = create_job(_spec(), training_file="file-abc", client=client, request_id="req-1", retry=NO_JITTER)  # type: ignore[arg-type]
    assert again.id == first.id and len(server.jobs) == 1


def test_create_job_refuses_full_metadata() -> None:
    spec = {"model": "m", "metadata": {f"k{i}": "v" for i in range(16)}}
    with pytest.raises(ConfigError, match="16 keys"):
        create_job(spec, training_file="file-abc", client=FakeClient(FakeServer()))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- wait


def test_wait_delivers_each_event_once_in_order_and_backs_off() -> None:
    server = FakeServer(total_steps=6)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    seen: list[JobEvent] = []
    final = wait_for_job(
        job.id,
        client=client,  # type: ignore[arg-type]
        on_event=[seen.append],
        progress=False,
        poll_interval=1.0,
        max_poll_interval=4.0,
        backoff=2.0,
        sleep=clock.sleep,
        clock=clock,
    )
    assert final.status == "succeeded"
    all_events = list(reversed(server.events[job.id]))
    assert [e.id for e in seen] == [e.id for e in all_events]
    assert [e.step for e in seen if e.step is not None] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].message == "The job has successfully completed"
    # fast after each status change, then growing to the cap
    assert clock.sleeps[:4] == [1.0, 1.0, 2.0, 4.0]
    assert max(clock.sleeps) == 4.0 and clock.sleeps[-2:] == [4.0, 4.0]


def test_interrupted_mid_batch_the_cursor_points_at_the_last_event_really_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import re

    server = FakeServer(total_steps=6)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    for _ in range(4):  # several events are waiting before anyone listens: the first poll gets a batch
        client._retrieve(job.id)
    first: list[JobEvent] = []

    def handle(event: JobEvent) -> None:
        if len(first) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third event of the batch is being handled
        first.append(event)

    clock = FakeClock()
    with pytest.raises(KeyboardInterrupt):
        wait_for_job(job.id, client=client, on_event=handle, progress=False, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    match = re.search(r'after_event_id="([^"]+)"', caplog.text)
    assert match and match.group(1) == first[-1].id  # not the last event of the batch
    second: list[JobEvent] = []
    final = wait_for_job(
        job.id,
        client=client,  # type: ignore[arg-type]
        on_event=second.append,
        after_event_id=match.group(1),
        progress=False,
        sleep=clock.sleep,
        clock=clock,
    )
    assert final.status == "succeeded"
    assert [e.id for e in first + second] == [e.id for e in reversed(server.events[job.id])]


def test_event_cursor_pages_backwards_until_known_event() -> None:
    server = FakeServer()
    client = FakeClient(server)
    for i in range(7):
        server.add_event("ftjob-0001", f"e{i}")
    cursor = EventCursor("ftjob-0001", page_size=3, policy=NO_JITTER, client=client)
    assert [e.message for e in cursor.fetch_new()] == [f"e{i}" for i in range(7)]
    assert cursor.fetch_new() == []
    for i in range(7, 12):
        server.add_event("ftjob-0001", f"e{i}")
    assert [e.message for e in cursor.fetch_new()] == [f"e{i}" for i in range(7, 12)]
    list_calls = [c for c in server.calls if c[0] == "list_events"]
    assert list_calls[-1][1]["after"] is not None  # the second batch needed a second page


def test_wait_raises_job_failed_with_code_and_message() -> None:
    server = FakeServer()
    server.fail_with = ("invalid_training_file", "line 3 has no assistant message")
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    with pytest.raises(JobFailed) as info:
        wait_for_job(job.id, client=client, progress=False, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert info.value.code == "invalid_training_file"
    assert info.value.error_message == "line 3 has no assistant message"
    assert info.value.job_id == job.id and job.id in str(info.value)


def test_wait_raises_job_cancelled() -> None:
    server = FakeServer()
    server.cancel_at_tick = 3
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    with pytest.raises(JobCancelled, match=job.id):
        wait_for_job(job, client=client, progress=False, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]


def test_timeout_then_reattach_without_repeating_events() -> None:
    server = FakeServer(total_steps=10)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    first: list[JobEvent] = []
    with pytest.raises(JobTimeout) as info:
        wait_for_job(
            job.id,
            client=client,  # type: ignore[arg-type]
            timeout=3.5,
            poll_interval=1.0,
            backoff=1.0,
            on_event=first.append,
            progress=False,
            sleep=clock.sleep,
            clock=clock,
        )
    cursor = info.value.last_event_id  # type: ignore[attr-defined]
    assert cursor == first[-1].id
    assert f'wait_for_job("{job.id}", after_event_id="{cursor}")' in str(info.value)
    assert f"finetune-wb wait {job.id} --after-event {cursor}" in str(info.value)
    assert server.jobs[0].status == "running"
    second: list[JobEvent] = []
    final = wait_for_job(
        job.id,
        client=client,  # type: ignore[arg-type]
        on_event=second.append,
        after_event_id=first[-1].id,
        progress=False,
        sleep=clock.sleep,
        clock=clock,
    )
    assert final.status == "succeeded"
    ids = [e.id for e in first + second]
    assert len(ids) == len(set(ids)) == len(server.events[job.id])


def test_wait_survives_random_transient_faults() -> None:
    server = FakeServer(total_steps=8, rng_faults=0.3, seed=7)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    seen: list[str] = []
    wait_for_job(
        job.id,
        client=client,  # type: ignore[arg-type]
        on_event=lambda e: seen.append(e.id),
        progress=False,
        retry=RetryPolicy(max_attempts=20, initial_wait=0.01, sleep=clock.sleep),
        sleep=clock.sleep,
        clock=clock,
    )
    assert seen == [e.id for e in reversed(server.events[job.id])]


def test_wait_progress_bar_shows_steps_and_loss(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeServer(total_steps=4)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    clock = FakeClock()
    wait_for_job(job.id, client=client, progress=True, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "4/4" in err and "loss=0.2500" in err and "succeeded" in err


# --------------------------------------------------------------------------------------------- list etc.


def test_list_jobs_all_pages_with_filters() -> None:
    server = FakeServer()
    client = FakeClient(server)
    for i in range(250):
        j = client._create(model="m", training_file="f", metadata={"team": "a" if i % 2 else "b"})
        j.status = "succeeded" if i % 5 == 0 else "running"
    assert len(list_jobs(client=client, page_size=40)) == 250  # type: ignore[arg-type]
    done = list_jobs(client=client, status="succeeded")  # type: ignore[arg-type]
    assert len(done) == 50 and all(j.status == "succeeded" for j in done)
    team_a = list_jobs(client=client, metadata={"team": "a"}, status=["running", "succeeded"])  # type: ignore[arg-type]
    assert len(team_a) == 125
    server.ignore_metadata_filter = True
    assert len(list_jobs(client=client, metadata={"team": "a"})) == 125  # type: ignore[arg-type]
    assert len(list_jobs(client=client, limit=7)) == 7  # type: ignore[arg-type]


def test_list_checkpoints_all_pages() -> None:
    checkpoints = list_checkpoints("ftjob-1", client=FakeClient(FakeServer()))  # type: ignore[arg-type]
    assert [c.step_number for c in checkpoints] == [50, 40, 30, 20, 10]


def test_job_metrics_reads_base64_result_file() -> None:
    server = FakeServer(total_steps=2)
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    with pytest.raises(JobError, match="wait_for_job"):
        job_metrics(job.id, client=client)  # type: ignore[arg-type]
    clock = FakeClock()
    final = wait_for_job(job.id, client=client, progress=False, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    rows = job_metrics(final, client=client)  # type: ignore[arg-type]
    assert rows == [{"step": 1, "train_loss": 1.0}, {"step": 2, "train_loss": 0.5, "valid_loss": 0.6}]


def test_cancel_job_of_an_ended_job_returns_it() -> None:
    server = FakeServer()
    client = FakeClient(server)
    job = client._create(model="m", training_file="file-1", metadata=None)
    assert cancel_job(job.id, client=client).status == "cancelled"  # type: ignore[arg-type]
    assert cancel_job(job, client=client).status == "cancelled"  # type: ignore[arg-type]  # a job object works
    with pytest.raises(JobError, match="no fine-tuning job"):
        cancel_job("ftjob-missing", client=client)  # type: ignore[arg-type]


def test_create_job_takes_paths_and_ids_and_names_a_missing_file(tmp_path: Any) -> None:
    from finetune_wb.errors import DataError

    server = FakeServer()
    with pytest.raises(DataError, match=r"cannot read missing\.jsonl: no such file"):
        create_job(_spec(), training_file="missing.jsonl", client=FakeClient(server))  # type: ignore[arg-type]
    assert not server.calls  # nothing was sent
    job = create_job(_spec(), training_file="file-abc", client=FakeClient(server), retry=NO_JITTER)  # type: ignore[arg-type]
    assert job.training_file == "file-abc"
