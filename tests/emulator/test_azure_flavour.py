"""The emulator's Azure flavour: routes, id shapes, trainingType, pause/resume, ARM deployments on its clock."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from finetune_wb.emulator import Emulator, ManualClock
from finetune_wb.errors import EmulatorError
from finetune_wb.model_ids import parse_model_id
from tests.fakes.emulator_helpers import jsonl, yes_no_examples

ARM = "/subscriptions/s/resourceGroups/r/providers/Microsoft.CognitiveServices/accounts/a/deployments"
V = {"api-version": "2024-10-01"}
BEARER = {"Authorization": "Bearer t"}


def _trained(emu: Any, clock: ManualClock, **create: Any) -> Any:
    client = emu.azure_client()
    file = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id, **create)
    for _ in range(200):
        clock.advance(30)
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status == "succeeded":
            return job
    raise AssertionError(job)


@pytest.fixture
def manual() -> Any:
    clock = ManualClock()
    with Emulator(clock=clock, flavour="azure") as emu:
        yield emu, clock


def test_ids_training_type_and_both_route_styles(manual: Any) -> None:
    emu, clock = manual
    job = _trained(emu, clock, suffix="legal", extra_body={"trainingType": "developerTier"})
    parsed = parse_model_id(job.fine_tuned_model)
    assert (parsed.shape, parsed.base, parsed.suffix) == ("azure-ft", "gpt-4o-mini-2024-07-18", "legal")
    assert emu.job(job.id)["trainingType"] == "developerTier"
    checkpoints = emu.v1_client().fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and all(
        parse_model_id(c.fine_tuned_model_checkpoint).shape == "azure-checkpoint" for c in checkpoints
    )
    with pytest.raises(openai.BadRequestError, match="trainingType"):
        emu.azure_client().fine_tuning.jobs.create(
            model="gpt-4o-mini-2024-07-18", training_file=job.training_file, extra_body={"trainingType": "x"}
        )
    r = httpx.get(f"{emu.url}/openai/models", headers={"api-key": "k"})
    assert r.status_code == 404 and "api-version" in r.json()["error"]["message"]


def test_deployment_states_move_on_the_clock_and_gate_chat(manual: Any) -> None:
    emu, clock = manual
    job = _trained(emu, clock)
    body = {
        "sku": {"name": "DeveloperTier", "capacity": 10},
        "properties": {"model": {"format": "OpenAI", "name": job.fine_tuned_model, "version": "1"}},
    }
    put = httpx.put(f"{emu.url}{ARM}/d", params=V, headers=BEARER, json=body)
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Creating"
    chat = emu.v1_client(max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:  # not ready yet: Azure's DeploymentNotFound
        chat.chat.completions.create(model="d", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "DeploymentNotFound"  # type: ignore[index]
    clock.advance(29)
    assert emu.deployment("d")["properties"]["provisioningState"] == "Creating"
    clock.advance(2)
    assert (
        httpx.get(f"{emu.url}{ARM}/d", params=V, headers=BEARER).json()["properties"]["provisioningState"]
        == "Succeeded"
    )
    assert chat.chat.completions.create(model="d", messages=[{"role": "user", "content": "x"}]).choices
    listing = httpx.get(f"{emu.url}{ARM}", params=V, headers=BEARER).json()["value"]
    assert [d["name"] for d in listing] == ["d"]
    # the same PUT again changes nothing
    again = httpx.put(f"{emu.url}{ARM}/d", params=V, headers=BEARER, json=body)
    assert again.status_code == 200 and again.json()["properties"]["provisioningState"] == "Succeeded"


def test_arm_errors(manual: Any) -> None:
    emu, _ = manual
    assert (
        httpx.get(f"{emu.url}{ARM}/d", params=V, headers={"api-key": "k"}).json()["error"]["code"]
        == "AuthenticationFailed"
    )
    assert (
        httpx.get(f"{emu.url}{ARM}/d", headers=BEARER).json()["error"]["code"] == "MissingApiVersionParameter"
    )
    missing = httpx.get(f"{emu.url}{ARM}/nope", params=V, headers=BEARER)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "DeploymentNotFound"
    assert httpx.delete(f"{emu.url}{ARM}/nope", params=V, headers=BEARER).status_code == 204
    bad = {"sku": {"name": "Premium"}, "properties": {"model": {"format": "OpenAI", "name": "gpt-4o-mini"}}}
    assert (
        httpx.put(f"{emu.url}{ARM}/x", params=V, headers=BEARER, json=bad).json()["error"]["code"]
        == "InvalidSkuName"
    )
    control = httpx.post(f"{emu.url}/_emulator/deployments", json={"quota": 5, "provision_seconds": 1})
    assert control.json()["quota"] == 5


def test_pause_and_resume(manual: Any) -> None:
    emu, clock = manual
    client = emu.azure_client()
    file = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(30))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    for _ in range(100):
        clock.advance(1)
        if client.fine_tuning.jobs.retrieve(job.id).status == "running":
            break
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    clock.advance(3600)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "running"


def test_unknown_flavour() -> None:
    with pytest.raises(EmulatorError, match="flavour must be one of openai, azure"):
        Emulator(flavour="gcp")
