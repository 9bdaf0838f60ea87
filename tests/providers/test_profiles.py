"""Provider profiles refuse what their provider refuses; the profile is picked from the client or by name."""

from __future__ import annotations

import openai
import pytest

from finetune_wb.errors import ConfigError
from finetune_wb.providers import PROFILES, ProviderRefusal, check_job_spec, get_profile, profile_for
from finetune_wb.providers.checks import profile_for_url
from finetune_wb.providers.hosting import hosting_usd_per_hour
from finetune_wb.schema import JobSpec

GRADER = {
    "type": "string_check",
    "name": "g",
    "input": "{{sample.output_text}}",
    "reference": "x",
    "operation": "eq",
}


def _refused(spec: JobSpec, provider: str) -> str:
    with pytest.raises(ProviderRefusal) as info:
        check_job_spec(spec, provider)
    assert info.value.provider == provider
    assert "Nothing was uploaded" in str(info.value)
    return info.value.field


@pytest.mark.parametrize(
    ("provider", "spec", "field"),
    [
        ("bedrock", JobSpec(method="reinforcement", grader=GRADER, suffix="x"), "suffix"),
        ("bedrock", JobSpec(), "method"),
        ("bedrock", JobSpec(method="reinforcement", grader=GRADER).with_wandb("p"), "integrations"),
        ("nebius", JobSpec(learning_rate_multiplier=2.0), "learning_rate_multiplier"),
        ("nebius", JobSpec(method="dpo"), "method"),
        (
            "nebius",
            JobSpec(provider_hyperparameters={"warp_speed": 9}),
            "provider_hyperparameters.warp_speed",
        ),
        ("openai", JobSpec(training_type="globalstandard"), "training_type"),
        ("openai", JobSpec(provider_hyperparameters={"lora": True}), "provider_hyperparameters.lora"),
        ("azure", JobSpec().with_wandb("proj"), "integrations"),
        ("azure", JobSpec(model="gpt-4.1-2025-04-14", method="reinforcement", grader=GRADER), "method"),
    ],
)
def test_refusals_name_the_field(provider: str, spec: JobSpec, field: str) -> None:
    assert _refused(spec, provider) == field


@pytest.mark.parametrize(
    ("provider", "spec"),
    [
        ("azure", JobSpec(training_type="developerTier", suffix="s", n_epochs=2)),
        ("azure", JobSpec(model="o4-mini-2025-04-16", method="reinforcement", grader=GRADER)),
        (
            "nebius",
            JobSpec(n_epochs=3, provider_hyperparameters={"lora": True, "lora_r": 16, "learning_rate": 1e-5}),
        ),
        ("bedrock", JobSpec(model="openai.gpt-oss-20b", method="reinforcement", grader=GRADER)),
        ("openai", JobSpec(method="dpo", beta=0.1, suffix="s").with_wandb("p")),
        ("generic", JobSpec(training_type="standard", provider_hyperparameters={"anything": 1}, suffix="x")),
    ],
)
def test_accepted_jobs_pass(provider: str, spec: JobSpec) -> None:
    check_job_spec(spec, provider)


def test_nebius_hyperparameters_are_sent_with_the_method() -> None:
    spec = JobSpec(n_epochs=2, provider_hyperparameters={"lora": True, "lora_r": 8})
    params = spec.to_create_params(training_file="file-1")
    assert params["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2, "lora": True, "lora_r": 8}
    azure = JobSpec(training_type="globalstandard").to_create_params(training_file="file-1")
    assert azure["extra_body"] == {"trainingType": "globalstandard"}
    # specs dumped before the new fields existed still compare equal (session state files)
    assert "training_type" not in JobSpec().model_dump(mode="json")


def test_profile_from_client_and_url() -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint="https://res.openai.azure.com", api_key="k", api_version="2024-10-21"
    )
    assert profile_for(azure).name == "azure"
    v1 = openai.OpenAI(base_url="https://res.openai.azure.com/openai/v1/", api_key="k")
    assert profile_for(v1).name == "azure"
    assert profile_for(openai.OpenAI(api_key="k", base_url="https://api.openai.com/v1")).name == "openai"
    assert profile_for_url("https://bedrock-mantle.us-west-2.api.aws/v1").name == "bedrock"
    assert profile_for_url("https://api.tokenfactory.nebius.com/v1/").name == "nebius"
    assert profile_for_url("http://127.0.0.1:8787/v1").name == "generic"
    assert profile_for_url("http://127.0.0.1:8787/openai/v1/").name == "azure"
    assert profile_for_url(None).name == "openai"
    assert profile_for(azure, provider="nebius").name == "nebius"  # named explicitly wins


def test_profile_for_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    assert profile_for().name == "azure"


def test_unknown_profile_lists_names() -> None:
    with pytest.raises(ConfigError, match="use one of openai, azure, bedrock, nebius, generic"):
        get_profile("vertex")


def test_describe_is_plain_json() -> None:
    import json

    for profile in PROFILES.values():
        data = json.loads(json.dumps(profile.describe()))
        assert data["name"] == profile.name and isinstance(data["refused"], dict)


def test_clients_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    nebius = PROFILES["nebius"].client_from_env(env={"NEBIUS_API_KEY": "nk"})
    assert (
        str(nebius.base_url).startswith("https://api.tokenfactory.nebius.com/v1") and nebius.api_key == "nk"
    )
    bedrock = PROFILES["bedrock"].client_from_env(env={"AWS_REGION": "eu-west-1"}, api_key="bk")
    assert "bedrock-mantle.eu-west-1.api.aws" in str(bedrock.base_url)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        PROFILES["azure"].client_from_env(env={})


def test_hosting_fee_by_sku() -> None:
    assert hosting_usd_per_hour("gpt-4o-mini-2024-07-18.ft-abc123", "DeveloperTier") == 0.0
    assert hosting_usd_per_hour("gpt-4o-mini-2024-07-18.ft-abc123", "Standard") == 1.70
    assert (
        hosting_usd_per_hour("gpt-4.1-2025-04-14.ft-abc123", "GlobalStandard", table={"gpt-4.1": 3.0}) == 3.0
    )
