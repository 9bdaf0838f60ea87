"""The CLI's light chat client (evaluation/light_client.py): same answers, errors and cache keys as openai's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.cli import main
from finetune_wb.evaluation import light_client
from finetune_wb.evaluation.light_client import LightAsyncClient, light_client_from_env

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini-2024-07-18"
BODY: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Is clause 3 confidential?"}],
    "max_tokens": 16,
    "temperature": 0,
}


@pytest.fixture(params=["aiohttp", "httpx"])
def http(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test below runs over aiohttp and over httpx2 (the fallback without aiohttp)."""
    monkeypatch.setenv("FINETUNE_WB_EVAL_HTTP", request.param)
    return str(request.param)


def _both(emu: Any) -> tuple[LightAsyncClient, openai.AsyncOpenAI]:
    return LightAsyncClient(api_key="sk-test", base_url=emu.base_url), emu.async_client(max_retries=0)


async def _outcome(client: Any) -> Any:
    try:
        result = await client.chat.completions.create(**BODY)
        if isinstance(client, LightAsyncClient):
            wanted = os.environ.get("FINETUNE_WB_EVAL_HTTP") != "httpx" and not os.environ.get("HTTPS_PROXY")
            expected = "aiohttp" if wanted else "httpx2"
            assert type(client._http).__module__.split(".")[0] == expected
    except Exception as exc:
        return exc
    finally:
        await client.close()
    return result if isinstance(result, dict) else result.model_dump()


def test_same_answer_as_openai(finetune_emulator: Any, http: str) -> None:
    light, sdk = _both(finetune_emulator)
    ours = asyncio.run(_outcome(light))
    theirs = asyncio.run(_outcome(sdk))
    assert ours["choices"][0]["message"]["content"] == theirs["choices"][0]["message"]["content"]
    assert ours["usage"]["prompt_tokens"] == theirs["usage"]["prompt_tokens"]
    assert light.base_url == str(sdk.base_url)  # the same cache keys


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_error_statuses_raise_what_openai_raises(finetune_emulator: Any, status: int, http: str) -> None:
    light, sdk = _both(finetune_emulator)
    outcomes = []
    for client in (light, sdk):
        finetune_emulator.inject_fault(path=CHAT, status=status, count=1, retry_after_ms=250)
        outcomes.append(asyncio.run(_outcome(client)))
    ours, theirs = outcomes
    assert type(ours) is type(theirs) and isinstance(ours, openai.APIStatusError)
    assert ours.status_code == theirs.status_code == status
    assert str(ours) == str(theirs)
    assert ours.response.headers.get("retry-after-ms") == theirs.response.headers.get("retry-after-ms")


def test_connection_failure_is_openais_connection_error(http: str) -> None:
    light = LightAsyncClient(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    exc = asyncio.run(_outcome(light))
    assert isinstance(exc, openai.APIConnectionError)
    assert str(exc.request.url) == "http://127.0.0.1:9/v1/chat/completions"


def test_built_only_for_plain_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    client = light_client_from_env()
    assert client is not None and client.base_url == "http://127.0.0.1:9/v1/"
    assert client._headers["OpenAI-Organization"] == "org-1"
    monkeypatch.setenv(light_client.ENV, "0")
    assert light_client_from_env() is None
    monkeypatch.delenv(light_client.ENV)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:pw@127.0.0.1:9/v1")
    assert light_client_from_env() is None  # user-info: the full client strips it and warns
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com")
    assert light_client_from_env() is None
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert light_client_from_env() is None  # no key: the full client says which variables to set


def test_a_proxy_variable_means_httpx2(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp would not read the proxy variables (and its trust_env costs a thread per request)."""
    monkeypatch.delenv("FINETUNE_WB_EVAL_HTTP", raising=False)
    assert light_client._use_aiohttp()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert not light_client._use_aiohttp()
    light = LightAsyncClient(api_key="sk-test", base_url=finetune_emulator.base_url)
    out = asyncio.run(_outcome(light))
    assert out["choices"][0]["message"]["content"]  # NO_PROXY: straight to the emulator, over httpx2


def _write(path: Path, n: int) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": f"Clause {i}?"}, {"role": "assistant", "content": "Yes"}]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_cache_is_shared_with_the_full_client(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Answers cached through the light client are found by the openai client, and the other way round."""
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = _write(tmp_path / "d.jsonl", 5)
    argv = ["eval", "--data", str(data), "--model", MODEL, "--cache", str(tmp_path / "c.db"), "--json"]
    n0 = len(finetune_emulator.journal)
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert len([e for e in finetune_emulator.journal[n0:] if e.path == CHAT]) == 5
    monkeypatch.setenv(light_client.ENV, "0")
    n1 = len(finetune_emulator.journal)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert [e for e in finetune_emulator.journal[n1:] if e.path == CHAT] == []  # all from the cache
    assert [r["output"] for r in again["rows"]] == [r["output"] for r in first["rows"]]


PROBE = r"""
import json, sys
from finetune_wb.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "openai": "openai" in sys.modules}))
"""


@pytest.mark.parametrize("light", [True, False])
def test_cli_eval_process_imports_openai_only_without_the_light_client(
    finetune_emulator: Any, tmp_path: Path, light: bool
) -> None:
    data = _write(tmp_path / "d.jsonl", 3)
    env = {**os.environ, "OPENAI_BASE_URL": finetune_emulator.base_url, "OPENAI_API_KEY": "sk-test"}
    if not light:
        env[light_client.ENV] = "0"
    argv = ["eval", "--data", str(data), "--model", MODEL, "--no-cache", "--no-progress", "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"code": 0, "openai": not light}
