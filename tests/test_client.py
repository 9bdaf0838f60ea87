from __future__ import annotations

from typing import Any

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


def _recording_transport(seen: list[str]) -> Any:
    import httpx

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"object": "list", "data": []})

    return handle


def test_a_passed_client_with_user_info_sends_the_api_key_as_bearer_not_basic_auth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpx turns URL user-info into Basic auth, replacing the key: the library keeps the key instead."""
    import httpx

    seen: list[str] = []
    http = httpx.Client(transport=httpx.MockTransport(_recording_transport(seen)))
    url = "http://gw-user:gw-pass-0123456789@gateway.test:8080/v1"
    mine = openai.OpenAI(api_key="sk-bearer-key-1", base_url=url, http_client=http, max_retries=0)
    client = get_client(mine)
    client.models.list()
    assert seen == ["Bearer sk-bearer-key-1"]
    assert str(client.base_url) == "http://gateway.test:8080/v1/" and client._client is http  # same pool
    assert str(mine.base_url).startswith("http://gw-user:")  # the caller's object is left as it was
    assert base_url_of(mine) == base_url_of(client) == "http://gateway.test:8080/v1"
    warned = [r.getMessage() for r in caplog.records if "user-info" in r.getMessage()]
    assert warned and "gw-pass" not in warned[0] and "http://gateway.test:8080/v1" in warned[0]


def test_an_async_client_with_user_info_sends_the_api_key_as_bearer() -> None:
    import asyncio

    import httpx

    seen: list[str] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(_recording_transport(seen)))
    url = "http://gw-user:gw-pass-0123456789@gateway.test/v1"
    aclient = get_async_client(openai.AsyncOpenAI(api_key="sk-bearer-key-2", base_url=url, http_client=http))

    async def ask() -> None:
        await aclient.models.list()
        await http.aclose()

    asyncio.run(ask())
    assert seen == ["Bearer sk-bearer-key-2"]
    twin = get_async_client(openai.OpenAI(api_key="sk-bearer-key-2", base_url=url))  # derived from a sync one
    assert str(twin.base_url) == "http://gateway.test/v1/" and twin.api_key == "sk-bearer-key-2"


def test_clients_from_the_environment_drop_the_base_urls_user_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://u:env-pass-0123456789@gw.example.test/v1")
    for client in (get_client(), get_async_client()):
        assert str(client.base_url) == "https://gw.example.test/v1/"
        assert client.api_key == "sk-test-not-a-real-key"
    assert base_url_of(get_client()) == "https://gw.example.test/v1"


def test_base_url_of_never_holds_credentials() -> None:
    """What is stored and shown (cache rows, state, reports, W&B config) of any client, duck-typed ones too."""

    class Duck:
        base_url = "https://u:duck-pass-0123456789@gw.test/v1/?api-key=duck-key-0123456789"

    assert base_url_of(Duck()) == "https://gw.test/v1"
    assert (
        base_url_of(openai.OpenAI(api_key="sk-x", base_url="http://127.0.0.1:1/v1"))
        == "http://127.0.0.1:1/v1"
    )
