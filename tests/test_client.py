from __future__ import annotations

import openai
import pytest

from finetune_wb._client import base_url_of, get_async_client, get_client
from finetune_wb.errors import ConfigError


def test_get_client_from_env_uses_base_url() -> None:
    client = get_client()
    assert isinstance(client, openai.OpenAI)
    assert base_url_of(client) == "http://127.0.0.1:9/v1"


def test_get_client_passes_through() -> None:
    client = openai.OpenAI(api_key="sk-x", base_url="http://127.0.0.1:1/v1")
    assert get_client(client) is client


def test_missing_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_client()


def test_azure_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example-resource.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    assert isinstance(get_client(), openai.AzureOpenAI)
    assert isinstance(get_async_client(), openai.AsyncAzureOpenAI)


def test_async_twin_of_sync_client_keeps_settings() -> None:
    sync = openai.OpenAI(
        api_key="sk-abc", base_url="http://127.0.0.1:5/v1", max_retries=7, default_headers={"X-Team": "ml"}
    )
    twin = get_async_client(sync)
    assert isinstance(twin, openai.AsyncOpenAI)
    assert twin.api_key == "sk-abc"
    assert base_url_of(twin) == "http://127.0.0.1:5/v1"
    assert twin.max_retries == 7
    assert twin._custom_headers["X-Team"] == "ml"
    assert get_async_client(twin) is twin


def test_async_twin_of_azure_client() -> None:
    sync = openai.AzureOpenAI(
        api_key="azure-key", api_version="2024-10-21", azure_endpoint="https://example.openai.azure.com"
    )
    twin = get_async_client(sync)
    assert isinstance(twin, openai.AsyncAzureOpenAI)
    assert base_url_of(twin) == base_url_of(sync)
    assert twin._api_version == "2024-10-21"


def test_rejects_other_objects() -> None:
    with pytest.raises(ConfigError, match="client must be"):
        get_async_client(object())


def test_without_retries_turns_the_openai_clients_retries_off() -> None:
    from finetune_wb._client import without_retries

    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=5)
    assert without_retries(client).max_retries == 0
    assert client.max_retries == 5  # the caller's client is left as it was
    duck = object()
    assert without_retries(duck) is duck  # a duck-typed client without with_options is used as it is
