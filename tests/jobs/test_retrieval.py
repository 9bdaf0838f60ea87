"""The one retried read of a job (``jobs.retrieval.retrieve_job``): every caller rides out a 429 / 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.errors import JobError
from finetune_wb.jobs.events import job_events
from finetune_wb.jobs.operations import get_job
from finetune_wb.jobs.result_file import job_metrics
from finetune_wb.jobs.retrieval import describe_api_error, retrieve_job
from finetune_wb.jobs.waiting import wait_for_job
from tests.fakes.finetune_api import FakeFineTuneAPI, FakeJob, jsonl, training_lines

JOB_ID = "ftjob-retrieve00001"
JOB_PATH = f"/v1/fine_tuning/jobs/{JOB_ID}"
NO_WAIT = RetryPolicy(sleep=lambda _s: None, jitter=False)


def _api() -> FakeFineTuneAPI:
    api = FakeFineTuneAPI(
        files={"file-train": jsonl(training_lines()), "file-valid": jsonl(training_lines())}
    )
    api.add_job(FakeJob(JOB_ID, event_steps=[1, 2, 3]))
    return api


CALLERS: dict[str, Callable[[Any], Any]] = {
    "get_job": lambda client: get_job(JOB_ID, client=client),
    "job_metrics": lambda client: job_metrics(JOB_ID, client=client),
    "wait_for_job": lambda client: wait_for_job(JOB_ID, client=client, progress=False, sleep=lambda _s: None),
}


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_retries_a_transient_error_when_reading_the_job(caller: str, status: int) -> None:
    api = _api()
    api.fail_once("GET", JOB_PATH, status)
    result = CALLERS[caller](api.client())  # the client's own retries are off (max_retries=0)
    assert result  # a job, or the result file's rows
    reads = [entry for entry in api.journal if entry[:2] == ("GET", JOB_PATH)]
    assert len(reads) == 2 and api.faults == []  # the failed read, then the one that worked


def test_retrieve_job_gives_up_after_the_policy_s_attempts() -> None:
    api = _api()
    for _ in range(3):
        api.fail_once("GET", JOB_PATH, 500)
    import openai

    with pytest.raises(openai.InternalServerError):
        retrieve_job(JOB_ID, client=api.client(), policy=RetryPolicy(max_attempts=3, sleep=lambda _s: None))
    assert len([e for e in api.journal if e[:2] == ("GET", JOB_PATH)]) == 3


def test_an_unknown_job_names_the_id_and_the_server_without_its_credentials() -> None:
    api = _api()
    client = api.client(base_url="http://bob:pw-secret-0123456789@fake-openai.invalid/v1")
    with pytest.raises(JobError) as info:
        retrieve_job("ftjob-nope", client=client, policy=NO_WAIT)
    message = str(info.value)
    assert info.value.job_id == "ftjob-nope" and "http://fake-openai.invalid/v1" in message
    assert "pw-secret" not in message and "finetune-wb jobs" in message
    # Described again by a caller (sync, the tracker): kept as it is, with what was being done in front.
    described = describe_api_error(info.value, client, "could not retrieve job ftjob-nope")
    assert described == f"could not retrieve job ftjob-nope: {message}"


def test_job_events_pages_through_every_event_oldest_first_and_retries() -> None:
    api = FakeFineTuneAPI()
    api.add_job(FakeJob(JOB_ID, event_steps=list(range(1, 8)), total_steps=8))
    api.fail_once("GET", f"{JOB_PATH}/events", 429)
    events = job_events(JOB_ID, client=api.client(), policy=NO_WAIT, page_size=3)
    created = [e.created_at for e in events]
    assert created == sorted(created) and len({e.id for e in events}) == len(events)
    assert [e.step for e in events if e.step is not None] == list(range(1, 8))
    pages = [e for e in api.journal if e[:2] == ("GET", f"{JOB_PATH}/events")]
    assert len(pages) >= 4  # the failed first page, then every page of 3
