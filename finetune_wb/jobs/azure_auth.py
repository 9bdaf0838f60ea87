"""Where an Azure OpenAI account lives in Azure Resource Manager, and a bearer token to manage it.

An :class:`AzureAccount` names the subscription, resource group and account (``AZURE_SUBSCRIPTION_ID``,
``AZURE_RESOURCE_GROUP``, ``AZURE_OPENAI_ACCOUNT``) and the management base URL (``AZURE_MANAGEMENT_URL``,
default ``https://management.azure.com``; another cloud's, or the emulator's). A token comes, in this order,
from the caller (a string, or any credential with azure-identity's ``get_token(scope)``), from
``AZURE_MANAGEMENT_TOKEN``, or from ``azure.identity.DefaultAzureCredential`` (``pip install
'finetune-wb[azure]'``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finetune_wb.errors import ConfigError, FineTuneError

DEFAULT_MANAGEMENT_URL = "https://management.azure.com"
ENV_VARS = {
    "subscription": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "account": "AZURE_OPENAI_ACCOUNT",
    "management_url": "AZURE_MANAGEMENT_URL",
}
TOKEN_ENV = "AZURE_MANAGEMENT_TOKEN"
_FLAGS = {
    "subscription": "--subscription",
    "resource_group": "--resource-group",
    "account": "--account",
}


class AzureAuthError(FineTuneError):
    """No ARM bearer token could be had (no token given, none in the environment, azure-identity failed)."""


class AzureAccount(BaseModel):
    """An Azure OpenAI (Cognitive Services) account as Azure Resource Manager addresses it."""

    model_config = ConfigDict(frozen=True)

    subscription: str = Field(description="subscription id (AZURE_SUBSCRIPTION_ID)")
    resource_group: str = Field(description="resource group (AZURE_RESOURCE_GROUP)")
    account: str = Field(description="the Azure OpenAI resource's name (AZURE_OPENAI_ACCOUNT)")
    management_url: str = Field(DEFAULT_MANAGEMENT_URL, description="ARM base URL (AZURE_MANAGEMENT_URL)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: str | None) -> AzureAccount:
        """Fields from ``given`` (None: not given), else from the environment; a :class:`ConfigError`
        naming every missing one with its flag and variable."""
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        missing = []
        for key, var in ENV_VARS.items():
            value = given.get(key) or env.get(var) or ""
            if value.strip():
                values[key] = value.strip()
            elif key != "management_url":
                missing.append(f"{key.replace('_', ' ')} ({_FLAGS[key]} or {var})")
        if missing:
            raise ConfigError(
                "the Azure account's location is incomplete: missing " + ", ".join(missing) + "; it is shown "
                "on the resource's Overview page in the Azure portal (or: az cognitiveservices account list)"
            )
        return cls(**values)

    @property
    def base(self) -> str:
        return (
            f"{self.management_url.rstrip('/')}/subscriptions/{self.subscription}/resourceGroups/"
            f"{self.resource_group}/providers/Microsoft.CognitiveServices/accounts/{self.account}"
        )

    def describe(self) -> str:
        return (
            f"account {self.account} (resource group {self.resource_group}, subscription {self.subscription})"
        )


def token_scope(management_url: str) -> str:
    """The OAuth scope of an ARM endpoint: ``https://management.azure.com/.default`` for the public cloud."""
    return management_url.rstrip("/") + "/.default"


def management_token(
    account: AzureAccount,
    *,
    token: str | None = None,
    credential: Any = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """A bearer token for ``account``'s management URL (see the module docstring for the order)."""
    if token:
        return token
    env = os.environ if env is None else env
    scope = token_scope(account.management_url)
    if credential is None:
        from_env = (env.get(TOKEN_ENV) or "").strip()
        if from_env:
            return from_env
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise AzureAuthError(
                f"no token to manage Azure deployments: set {TOKEN_ENV} (e.g. from `az account get-access-token "
                "--query accessToken -o tsv`), pass token=/credential=, or install azure-identity "
                "(pip install 'finetune-wb[azure]') to sign in with DefaultAzureCredential"
            ) from None
        credential = DefaultAzureCredential()
    try:
        return str(credential.get_token(scope).token)
    except Exception as exc:  # azure-identity raises ClientAuthenticationError and friends
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise AzureAuthError(
            f"could not get a token for {scope} with {type(credential).__name__}: {first}; sign in "
            f"(az login), set {TOKEN_ENV}, or pass token= explicitly"
        ) from exc
