"""Model shutdowns in the emulator: shutdown_date on /v1/models, the retire route, and the removed-model 404."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from finetune_wb.emulator import ManualClock, run_emulator
from finetune_wb.errors import EmulatorError
from tests.migration.helpers import fine_tune, yes_no_examples

BASE = "gpt-4o-mini-2024-07-18"
ASK = [{"role": "user", "content": "Does clause 1 mention payment?"}]


def _listed(client: openai.OpenAI) -> dict[str, Any]:
    """Model id -> its extra fields as the openai SDK keeps them (``shutdown_date`` when the server sent one)."""
    return {m.id: m.model_dump(include={"shutdown_date"}) for m in client.models.list()}


def test_configured_dates_are_listed_and_a_fine_tune_inherits_its_base_date() -> None:
    with run_emulator(pace=0.01, shutdown_dates={BASE: "2027-01-14"}) as emu:
        client = emu.client()
        ft, _ = fine_tune(client, yes_no_examples(12), base=BASE)
        listed = _listed(client)
        assert listed[BASE]["shutdown_date"] == "2027-01-14"
        assert listed[ft]["shutdown_date"] == "2027-01-14"
        assert listed["gpt-4.1-mini"]["shutdown_date"] is None
        assert getattr(client.models.retrieve(ft), "shutdown_date", None) == "2027-01-14"
        emu.reset()  # configured dates survive a reset
        assert _listed(client)[BASE]["shutdown_date"] == "2027-01-14"


def test_after_the_shutdown_time_chat_and_job_creation_fail_like_the_api() -> None:
    clock = ManualClock()
    with run_emulator(pace=0.01, clock=clock) as emu:
        client = emu.client(max_retries=0)
        ft, _ = fine_tune_manual(emu, client)
        emu.retire(ft, at=clock.now() + 3600)
        assert client.chat.completions.create(model=ft, messages=ASK).choices[0].message.content  # still up
        emu.advance(3600)
        with pytest.raises(openai.NotFoundError) as err:
            client.chat.completions.create(model=ft, messages=ASK)
        body = err.value.body
        assert err.value.status_code == 404
        assert body["code"] == "model_not_found" and body["type"] == "invalid_request_error"  # type: ignore[index]
        assert f"The model `{ft}` has been deprecated" in body["message"]  # type: ignore[index]
        # other models are unaffected
        assert client.chat.completions.create(model="gpt-4.1-mini", messages=ASK).choices
        # a retired base model refuses fine-tuning jobs and takes its fine-tunes with it
        emu.retire("gpt-4.1-nano-2025-04-14")
        with pytest.raises(openai.BadRequestError) as bad:
            client.fine_tuning.jobs.create(model="gpt-4.1-nano-2025-04-14", training_file="file-x")
        assert bad.value.body["code"] == "model_not_available"  # type: ignore[index]


def fine_tune_manual(emu: Any, client: openai.OpenAI) -> tuple[str, str]:
    """fine_tune() on an emulator with a ManualClock: advance the clock until the job has finished."""
    import io

    from tests.fakes.emulator_helpers import jsonl

    uploaded = client.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(yes_no_examples(12)))), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id)
    for _ in range(200):
        emu.advance(5)
        done = client.fine_tuning.jobs.retrieve(job.id)
        if done.status == "succeeded":
            return str(done.fine_tuned_model), job.id
    raise AssertionError("job did not finish")


def test_admin_route_retires_at_a_given_time_and_rejects_a_bad_time(finetune_emulator: Any) -> None:
    emu = finetune_emulator
    client = emu.client(max_retries=0)
    with httpx.Client(base_url=emu.url, timeout=10) as admin:
        ok = admin.post("/_emulator/models/gpt-4.1-mini/retire", json={"at": "2020-01-01"})
        assert ok.status_code == 200 and ok.json()["shutdown_date"] == "2020-01-01"
        bad = admin.post("/_emulator/models/gpt-4.1-mini/retire", json={"at": "next tuesday"})
        assert bad.status_code == 400 and "ISO date" in bad.json()["error"]["message"]
    assert _listed(client)["gpt-4.1-mini"]["shutdown_date"] == "2020-01-01"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4.1-mini", messages=ASK)
    emu.reset()  # a retirement made at run time is forgotten
    assert client.chat.completions.create(model="gpt-4.1-mini", messages=ASK).choices


def test_retire_rejects_a_bad_time(finetune_emulator: Any) -> None:
    with pytest.raises(EmulatorError, match="retire: 'at' must be"):
        finetune_emulator.retire("gpt-4.1-mini", at="soon")
