"""Pre-flight: OpenAI's end of new jobs and base model shutdown dates, before anything is uploaded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from finetune_wb.jobs.operations import create_job
from finetune_wb.providers.checks import ProviderRefusal
from finetune_wb.providers.preflight_checks import PreflightError, jobs_end_refusal, preflight
from finetune_wb.retirement_dates import FINE_TUNING_JOBS_END, Retirement
from finetune_wb.schema import JobSpec
from tests.fakes.emulator_helpers import jsonl, yes_no_examples

SPEC = JobSpec(model="gpt-4o-mini-2024-07-18")


def test_openai_end_of_jobs_says_how_to_go_on() -> None:
    with pytest.raises(PreflightError) as info:
        preflight(SPEC, provider="openai", today=FINE_TUNING_JOBS_END)
    text = str(info.value)
    assert info.value.reason == "jobs_end" and "2027-01-06" in text
    assert "Azure OpenAI" in text and "same JobSpec" in text and "--provider azure" in text
    # the day before, it runs (with a warning: its base model shuts down a week later)
    warnings = preflight(SPEC, provider="openai", today=FINE_TUNING_JOBS_END - dt.timedelta(days=1))
    assert len(warnings) == 1 and "2027-01-14" in warnings[0] and "gpt-5-mini" in warnings[0]
    # Azure takes the same job on the same day
    assert preflight(SPEC, provider="azure", today=FINE_TUNING_JOBS_END) == []


def test_shut_down_base_model_is_refused_with_its_date() -> None:
    with pytest.raises(
        PreflightError, match=r"gpt-3.5-turbo-0125 was shut down on 2026-10-23.*gpt-4.1-mini"
    ) as info:
        preflight(JobSpec(model="gpt-3.5-turbo-0125"), provider="openai", today=dt.date(2026, 12, 1))
    assert info.value.reason == "model_shut_down"
    assert preflight(SPEC, provider="openai", today=dt.date(2026, 6, 1)) == []  # far from its date


def test_table_for_another_provider() -> None:
    table = {"gpt-4.1": Retirement(dt.date(2027, 10, 15), "Azure model retirements page")}
    spec = JobSpec(model="gpt-4.1-2025-04-14")
    assert preflight(spec, provider="azure", today=dt.date(2027, 3, 1), table=table) == []
    warnings = preflight(spec, provider="azure", today=dt.date(2027, 10, 1), table=table)
    assert "2027-10-15" in warnings[0] and "in 14 days" in warnings[0]


def test_provider_refusal_is_part_of_preflight() -> None:
    with pytest.raises(ProviderRefusal, match="suffix"):
        preflight(JobSpec(method="reinforcement", grader={"type": "x"}, suffix="s"), provider="bedrock")


class _Refusal(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.body = {"error": {"message": message, "code": None}}


def test_server_refusal_becomes_the_same_message() -> None:
    exc = _Refusal("Fine-tuning is no longer available for new jobs on this platform.")
    err = jobs_end_refusal(exc)
    assert err is not None and "Azure OpenAI" in str(err) and err.reason == "jobs_end"
    assert jobs_end_refusal(_Refusal("Invalid n_epochs")) is None
    assert jobs_end_refusal(ValueError("fine-tuning no longer available")) is None  # not an HTTP answer


def test_create_job_refuses_before_upload(finetune_emulator: Any, tmp_path: Any) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(yes_no_examples(12)))
    client = finetune_emulator.client()
    with pytest.raises(PreflightError, match="OpenAI takes no new fine-tuning jobs"):
        create_job(SPEC, training_file=path, client=client, provider="openai", today=dt.date(2027, 2, 1))
    assert not [e for e in finetune_emulator.journal if e.method == "POST"]
    job = create_job(SPEC, training_file=path, client=client)  # the emulator's profile is generic
    assert job.id.startswith("ftjob-")


def test_server_refusal_through_create_job(finetune_emulator: Any) -> None:
    client = finetune_emulator.client()
    file = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(12))), purpose="fine-tune")
    finetune_emulator.inject_fault(
        status=400, code="fine_tuning_jobs_ended", message="This API no longer accepts new fine-tuning jobs."
    )
    with pytest.raises(PreflightError, match="Azure OpenAI"):
        create_job(SPEC, training_file=file.id, client=client)
