"""Jobs end to end against the emulator: create once, wait, fail, cancel, time out and re-attach, chaos.

The emulator here runs on a ManualClock: its jobs progress only when the test moves the clock, and
``wait_for_job`` is given ``sleep=clock.advance``, so a "minutes long" job finishes instantly and no test
sleeps for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.emulator import ManualClock, run_emulator
from finetune_wb.errors import JobCancelled, JobFailed, JobTimeout
from finetune_wb.jobs.events import JobEvent
from finetune_wb.jobs.operations import REQUEST_ID_KEY, cancel_job, create_job, list_checkpoints, list_jobs
from finetune_wb.jobs.result_file import job_metrics
from finetune_wb.jobs.upload import upload_file
from finetune_wb.jobs.waiting import wait_for_job
from finetune_wb.schema import JobSpec

FAST_RETRY = RetryPolicy(max_attempts=15, initial_wait=0.0, max_wait=0.0, max_retry_after=0.0, jitter=False)
SPEC = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=2)


@pytest.fixture(scope="module")
def _manual_emulator() -> Iterator[Any]:
    with run_emulator(pace=1.0, clock=ManualClock()) as emu:
        yield emu


@pytest.fixture
def emu(_manual_emulator: Any) -> Any:
    _manual_emulator.reset()
    return _manual_emulator


@pytest.fixture
def client(emu: Any) -> Iterator[Any]:
    c = emu.client()
    yield c
    c.close()


def _training_file(tmp_path: Path, n: int = 16) -> Path:
    path = tmp_path / "train.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            answer = "Yes" if i % 3 else "No"
            messages = [
                {"role": "system", "content": "Does the clause say the information is confidential?"},
                {"role": "user", "content": f"Clause {i}: the receiving party shall keep item {i} secret."},
                {"role": "assistant", "content": answer},
            ]
            fh.write(json.dumps({"messages": messages}) + "\n")
    return path


def _wait(emu: Any, client: Any, job_id: str, **kw: Any) -> Any:
    kw.setdefault("progress", False)
    kw.setdefault("retry", FAST_RETRY)
    return wait_for_job(job_id, client=client, sleep=emu.clock.advance, clock=emu.clock.now, **kw)


def _server_events(client: Any, job_id: str) -> list[str]:
    """Every event id of the job, oldest first, read straight from the server."""
    return [e.id for e in reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=100)))]


def _creates(emu: Any) -> list[Any]:
    return [e for e in emu.journal if e.method == "POST" and e.path == "/v1/fine_tuning/jobs"]


def test_create_and_wait_to_success(emu: Any, client: Any, tmp_path: Path) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    assert job.metadata and len(job.metadata[REQUEST_ID_KEY]) == 32
    seen: list[JobEvent] = []
    final = _wait(emu, client, job.id, on_event=seen.append)
    assert final.status == "succeeded" and final.fine_tuned_model
    assert [e.id for e in seen] == _server_events(client, job.id)  # every event, once, oldest first
    steps = [e.step for e in seen if e.is_metrics]
    total = max(e.total_steps or 0 for e in seen)
    assert steps == list(range(1, total + 1))
    assert all("train_loss" in e.metrics for e in seen if e.is_metrics)
    rows = job_metrics(final, client=client)
    assert [r["step"] for r in rows] == steps and all("train_loss" in r for r in rows)
    assert list_checkpoints(final.id, client=client)


def test_a_500_after_the_job_was_created_does_not_start_a_second_job(
    emu: Any, client: Any, tmp_path: Path
) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    # Without the guard: the plain openai client retries the POST and two paid jobs exist.
    emu.inject_fault(path="/v1/fine_tuning/jobs", method="POST", status=500, after_handler=True)
    client.fine_tuning.jobs.create(model=SPEC.model, training_file=train.id)
    assert len(list_jobs(client=client)) == 2
    emu.reset()

    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    emu.inject_fault(path="/v1/fine_tuning/jobs", method="POST", status=500, after_handler=True)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    assert [e.status for e in _creates(emu)] == [500]  # one create sent; the job was found and adopted
    jobs = list_jobs(client=client)
    assert [j.id for j in jobs] == [job.id]
    assert _wait(emu, client, job.id).status == "succeeded"


def test_a_client_with_its_own_retries_still_starts_one_job(emu: Any, tmp_path: Path) -> None:
    eager = emu.client(max_retries=5)  # a user's client that would re-send the POST five times by itself
    train = upload_file(_training_file(tmp_path), client=eager, progress=False)
    emu.inject_fault(path="/v1/fine_tuning/jobs", method="POST", status=500, after_handler=True, count=3)
    job = create_job(SPEC, training_file=train.id, client=eager, retry=FAST_RETRY)
    assert [e.status for e in _creates(emu)] == [500]
    assert [j.id for j in list_jobs(client=eager)] == [job.id]
    eager.close()


def test_a_429_before_creation_is_retried_once(emu: Any, client: Any, tmp_path: Path) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    emu.inject_fault(path="/v1/fine_tuning/jobs", method="POST", status=429, retry_after_ms=1)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    assert [e.status for e in _creates(emu)] == [429, 200]
    assert [j.id for j in list_jobs(client=client)] == [job.id]


def test_failed_job_raises_job_failed(emu: Any, client: Any, tmp_path: Path) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    emu.fail_job(job.id, code="invalid_training_file", message="Line 4 is missing an assistant message")
    with pytest.raises(JobFailed) as info:
        _wait(emu, client, job.id)
    assert info.value.code == "invalid_training_file"
    assert info.value.error_message == "Line 4 is missing an assistant message"
    assert info.value.job_id == job.id and "invalid_training_file" in str(info.value)


def test_cancel_while_waiting_raises_job_cancelled(emu: Any, client: Any, tmp_path: Path) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)

    def cancel_on_first_metrics(event: JobEvent) -> None:
        if event.step == 1:
            assert cancel_job(job.id, client=client).status in ("cancelled", "cancelling")

    with pytest.raises(JobCancelled, match=job.id):
        _wait(emu, client, job.id, on_event=cancel_on_first_metrics)
    assert cancel_job(job.id, client=client).status == "cancelled"  # cancelling again is harmless


def test_timeout_then_reattach_delivers_remaining_events_once(emu: Any, client: Any, tmp_path: Path) -> None:
    train = upload_file(_training_file(tmp_path), client=client, progress=False)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    emu.clock.advance(1.0)  # let it start: some events exist before we give up

    first: list[JobEvent] = []
    waited = [0.0]

    def frozen_sleep(seconds: float) -> None:  # our clock runs, the server's does not: the job never ends
        waited[0] += seconds

    with pytest.raises(JobTimeout) as info:
        wait_for_job(
            job.id,
            client=client,
            timeout=10,
            on_event=first.append,
            progress=False,
            sleep=frozen_sleep,
            clock=lambda: waited[0],
        )
    assert info.value.job_id == job.id and first
    # The exception carries the cursor (the last delivered event) and the message spells out the re-attach.
    cursor = info.value.last_event_id  # type: ignore[attr-defined]
    assert cursor == first[-1].id
    message = str(info.value)
    assert f'wait_for_job("{job.id}", after_event_id="{cursor}")' in message
    assert f"finetune-wb wait {job.id} --after-event {cursor}" in message
    assert client.fine_tuning.jobs.retrieve(job.id).status not in ("succeeded", "failed", "cancelled")

    # A restarted process knows only the job id and the cursor string it saved: a fresh client, no state.
    fresh = emu.client()
    second: list[JobEvent] = []
    final = _wait(emu, fresh, job.id, on_event=second.append, after_event_id=cursor)
    fresh.close()
    assert final.status == "succeeded"
    assert [e.id for e in first + second] == _server_events(client, job.id)
    assert len({e.id for e in first + second}) == len(first) + len(second)


def test_unknown_job_id_is_named(emu: Any, client: Any) -> None:
    from finetune_wb.errors import JobError
    from finetune_wb.jobs.operations import get_job

    for call in (
        lambda: get_job("ftjob-missing", client=client, retry=FAST_RETRY),
        lambda: _wait(emu, client, "ftjob-missing"),
        lambda: cancel_job("ftjob-missing", client=client, retry=FAST_RETRY),
        lambda: list_checkpoints("ftjob-missing", client=client, retry=FAST_RETRY),
        lambda: job_metrics("ftjob-missing", client=client, retry=FAST_RETRY),
    ):
        with pytest.raises(JobError) as info:
            call()
        assert info.value.job_id == "ftjob-missing"
        assert "no fine-tuning job ftjob-missing on http://127.0.0.1" in str(info.value)
        assert "finetune-wb jobs" in str(info.value)


def test_twenty_percent_faults_across_the_whole_flow(emu: Any, client: Any, tmp_path: Path) -> None:
    emu.inject_fault(path="/v1/*", method=None, status=500, count=None, probability=0.1, after_handler=True)
    emu.inject_fault(path="/v1/*", method=None, status=429, count=None, probability=0.12, retry_after_ms=1)
    events: list[str] = []
    train = upload_file(_training_file(tmp_path), client=client, progress=False, retry=FAST_RETRY)
    job = create_job(SPEC, training_file=train.id, client=client, retry=FAST_RETRY)
    final = _wait(emu, client, job.id, on_event=lambda e: events.append(e.id), poll_interval=0.1, backoff=1.0)
    rows = job_metrics(final, client=client, retry=FAST_RETRY)
    faults = [e for e in emu.journal if e.status in (429, 500)]
    total = len(emu.journal)
    assert final.status == "succeeded" and rows
    assert len(faults) >= 5 and 0.08 <= len(faults) / total <= 0.4  # the faults really happened
    jobs = [e for e in emu.journal if e.method == "POST" and e.path == "/v1/fine_tuning/jobs"]
    assert jobs  # at least one create was sent
    server_jobs = client.with_options(max_retries=20).fine_tuning.jobs.list(limit=100).data
    assert [j.id for j in server_jobs] == [job.id]  # no duplicate job
    server_events = [
        e.id for e in reversed(list(client.with_options(max_retries=20).fine_tuning.jobs.list_events(job.id)))
    ]
    assert events == server_events  # none lost, none repeated, in order
    assert len(set(events)) == len(events)


def test_the_whole_flow_through_an_azure_client(emu: Any, tmp_path: Path) -> None:
    import openai

    endpoint = emu.base_url.removesuffix("/v1")  # AzureOpenAI adds /openai/... and ?api-version=
    azure = openai.AzureOpenAI(azure_endpoint=endpoint, api_key="azure-key", api_version="2024-10-21")
    path = _training_file(tmp_path)
    train = upload_file(path, client=azure, progress=False)
    assert upload_file(path, client=azure, progress=False).id == train.id
    emu.inject_fault(path="/v1/fine_tuning/jobs", method="POST", status=500, after_handler=True)
    job = create_job(SPEC, training_file=train.id, client=azure, retry=FAST_RETRY)
    assert [e.status for e in _creates(emu)] == [500]  # (the emulator journals /openai/... as /v1/...)
    assert [j.id for j in list_jobs(client=azure)] == [job.id]
    assert all("api-version=2024-10-21" in (e.query or "") for e in emu.journal)  # really the Azure client
    assert _wait(emu, azure, job.id).status == "succeeded"
    azure.close()
