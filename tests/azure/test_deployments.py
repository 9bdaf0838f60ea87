"""deploy_model / get_deployment / undeploy against the emulator's management routes."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from finetune_wb.emulator import Emulator, ManualClock
from finetune_wb.errors import ConfigError
from finetune_wb.jobs.azure_auth import AzureAccount, AzureAuthError, management_token, token_scope
from finetune_wb.jobs.deployments import (
    DeploymentError,
    DeploymentFailed,
    DeploymentNameInUse,
    deploy_model,
    get_deployment,
    undeploy,
)
from tests.azure.helpers import ACCOUNT_PATH, arm_requests, fine_tuned_model

FAST = {"poll_interval": 0.02, "token": "arm-token"}


def test_deploy_waits_until_succeeded_and_reuses_on_rerun(
    finetune_emulator_azure: Any, account: AzureAccount
) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    states: list[str] = []
    dep = deploy_model(model, name="d1", account=account, on_state=lambda d: states.append(d.state), **FAST)
    assert (dep.state, dep.sku, dep.capacity, dep.model, dep.reused) == (
        "Succeeded",
        "DeveloperTier",
        50,
        model,
        False,
    )
    assert states[0] == "Creating" and states[-1] == "Succeeded"
    assert dep.id and dep.id.endswith(ACCOUNT_PATH + "/deployments/d1")
    again = deploy_model(model, name="d1", account=account, **FAST)
    assert again.reused and again.state == "Succeeded"
    assert arm_requests(emu, "PUT", "d1") == 1
    answer = emu.v1_client().chat.completions.create(model="d1", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content
    assert get_deployment("d1", account=account, token="t").state == "Succeeded"  # type: ignore[union-attr]


def test_name_used_by_another_model_is_refused_without_a_put(
    finetune_emulator_azure: Any, account: AzureAccount
) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    deploy_model(model, name="shared", account=account, **FAST)
    other = fine_tuned_model(emu, n=14)
    with pytest.raises(DeploymentNameInUse, match=r"already serves .*choose another deployment name"):
        deploy_model(other, name="shared", account=account, **FAST)
    assert arm_requests(emu, "PUT", "shared") == 1
    assert emu.deployment("shared")["properties"]["model"]["name"] == model


def test_quota_refusal_names_capacity(finetune_emulator_azure: Any, account: AzureAccount) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    emu.set_deployment_quota(40)
    with pytest.raises(DeploymentError, match=r"InsufficientQuota.*lower the capacity \(asked 50\)"):
        deploy_model(model, name="big", account=account, **FAST)
    assert emu.deployment("big") is None
    assert deploy_model(model, name="big", account=account, capacity=40, **FAST).state == "Succeeded"


def test_failed_deployment_then_retry(finetune_emulator_azure: Any, account: AzureAccount) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    emu.fail_next_deployment("Capacity is not available in this region.")
    with pytest.raises(DeploymentFailed, match="Capacity is not available") as info:
        deploy_model(model, name="d2", account=account, **FAST)
    assert info.value.deployment == "d2" and info.value.model == model
    assert deploy_model(model, name="d2", account=account, **FAST).state == "Succeeded"


def test_unknown_model_and_bad_sku(finetune_emulator_azure: Any, account: AzureAccount) -> None:
    with pytest.raises(DeploymentError, match="DeploymentModelNotSupported"):
        deploy_model("gpt-4o-mini-2024-07-18.ft-00000000000000", name="d3", account=account, **FAST)
    with pytest.raises(Exception, match="unknown sku"):
        deploy_model("m", name="d3", account=account, sku="premium", **FAST)


def test_transient_errors_are_retried_once_deployed(
    finetune_emulator_azure: Any, account: AzureAccount
) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    emu.inject_fault(path=ACCOUNT_PATH + "/deployments/d4", method="PUT", status=429, retry_after_ms=1)
    emu.inject_fault(path=ACCOUNT_PATH + "/deployments/d4", method="GET", status=503, retry_after_ms=1)
    assert deploy_model(model, name="d4", account=account, **FAST).state == "Succeeded"
    assert arm_requests(emu, "PUT", "d4") == 1


def test_undeploy_and_missing(finetune_emulator_azure: Any, account: AzureAccount) -> None:
    emu = finetune_emulator_azure
    model = fine_tuned_model(emu)
    deploy_model(model, name="gone", account=account, **FAST)
    assert undeploy("gone", account=account, token="t") is True
    assert undeploy("gone", account=account, token="t") is False
    assert get_deployment("gone", account=account, token="t") is None
    # the model itself stays: it can be deployed again
    assert deploy_model(model, name="gone", account=account, **FAST).state == "Succeeded"


def test_timeout_says_it_keeps_provisioning() -> None:
    clock = ManualClock()
    with Emulator(clock=clock, flavour="azure") as emu:
        model = fine_tuned_model_manual(emu, clock)
        account = AzureAccount(
            subscription="s", resource_group="r", account="a", management_url=emu.management_url
        )
        ticks = iter(range(100))
        with pytest.raises(DeploymentError, match=r"still Creating after 3 s.*call deploy again"):
            deploy_model(
                model,
                name="slow",
                account=account,
                timeout=3,
                clock=lambda: float(next(ticks)),
                sleep=lambda s: None,
                token="t",
            )
        clock.advance(31)
        assert (
            deploy_model(model, name="slow", account=account, token="t", sleep=lambda s: None).state
            == "Succeeded"
        )


def fine_tuned_model_manual(emu: Any, clock: ManualClock) -> str:
    from tests.fakes.emulator_helpers import jsonl, yes_no_examples

    client = emu.azure_client()
    file = client.files.create(file=("t.jsonl", jsonl(yes_no_examples(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    for _ in range(200):
        clock.advance(30)
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status == "succeeded":
            return str(job.fine_tuned_model)
    raise AssertionError(job)


def test_missing_location_names_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_OPENAI_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as info:
        AzureAccount.from_env(subscription="s")
    text = str(info.value)
    assert "--resource-group or AZURE_RESOURCE_GROUP" in text and "--account or AZURE_OPENAI_ACCOUNT" in text
    assert "subscription" not in text.split("missing")[1]


def test_token_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    account = AzureAccount(subscription="s", resource_group="r", account="a")
    assert token_scope(account.management_url) == "https://management.azure.com/.default"
    assert management_token(account, token="given") == "given"
    assert management_token(account, env={"AZURE_MANAGEMENT_TOKEN": "from-env"}) == "from-env"

    class Refusing:
        def get_token(self, scope: str) -> Any:
            raise RuntimeError("AADSTS700016: application not found in the directory")

    with pytest.raises(
        AzureAuthError, match=r"could not get a token for https://management.azure.com/.default.*AADSTS"
    ):
        management_token(account, credential=Refusing(), env={})

    class Granting:
        def get_token(self, scope: str) -> Any:
            return type("T", (), {"token": f"tok-for-{scope}"})()

    assert (
        management_token(account, credential=Granting(), env={})
        == "tok-for-https://management.azure.com/.default"
    )
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # azure-identity not installed
    with pytest.raises(
        AzureAuthError, match=r"set AZURE_MANAGEMENT_TOKEN.*pip install 'finetune-wb\[azure\]'"
    ):
        management_token(account, env={})
