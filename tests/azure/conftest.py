"""Fixtures for the Azure tests: the Azure flavour of the emulator and its account location."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_wb.jobs.azure_auth import AzureAccount


@pytest.fixture
def azure_env(finetune_emulator_azure: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Azure emulator with the environment a user would set (location, token, data-plane endpoint)."""
    emu = finetune_emulator_azure
    for var, value in {
        "AZURE_SUBSCRIPTION_ID": "sub-1",
        "AZURE_RESOURCE_GROUP": "rg-1",
        "AZURE_OPENAI_ACCOUNT": "acct-1",
        "AZURE_MANAGEMENT_URL": emu.management_url,
        "AZURE_MANAGEMENT_TOKEN": "arm-token",
    }.items():
        monkeypatch.setenv(var, value)
    return emu


@pytest.fixture
def account(finetune_emulator_azure: Any) -> AzureAccount:
    return AzureAccount(
        subscription="sub-1",
        resource_group="rg-1",
        account="acct-1",
        management_url=finetune_emulator_azure.management_url,
    )
