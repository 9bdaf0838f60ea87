"""The engine's own clients use openai's aiohttp transport when installed (evaluation/http_clients.py)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from finetune_wb.evaluation import evaluate, http_clients
from finetune_wb.schema import ChatExample

MODEL = "gpt-4o-mini-2024-07-18"


def examples(n: int) -> list[ChatExample]:
    return [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "user", "content": f"Is clause {i} confidential?"},
                    {"role": "assistant", "content": "Yes" if i % 2 else "No"},
                ]
            }
        )
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*http_clients.PROXY_VARS, http_clients.ENV):
        monkeypatch.delenv(var, raising=False)


def test_choice_of_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    assert http_clients.use_aiohttp()  # aiohttp is installed (openai[aiohttp])
    monkeypatch.setenv(http_clients.ENV, "httpx")
    assert not http_clients.use_aiohttp()
    monkeypatch.delenv(http_clients.ENV)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert not http_clients.use_aiohttp()  # openai's aiohttp transport ignores proxy variables
    monkeypatch.setenv(http_clients.ENV, "aiohttp")
    assert http_clients.use_aiohttp()


def test_only_default_clients_are_switched() -> None:
    built = openai.AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", timeout=7.0)
    fast = http_clients.with_fast_transport(built)
    assert http_clients.transport_name(fast) == "aiohttp"
    assert http_clients.transport_name(built) == "httpx"
    assert fast.timeout == 7.0 and str(fast.base_url) == str(built.base_url) and fast.api_key == "sk-test"
    custom = openai.AsyncOpenAI(
        api_key="sk-test", base_url="http://127.0.0.1:9/v1", http_client=openai.DefaultAsyncHttpxClient()
    )
    assert http_clients.with_fast_transport(custom) is custom  # the caller's own http_client is kept


@pytest.mark.parametrize("choice", ["aiohttp", "httpx"])
def test_evaluate_answers_alike_on_both_transports(
    finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    monkeypatch.setenv(http_clients.ENV, choice)
    used: list[Any] = []
    real = http_clients.with_fast_transport

    def spy(aclient: Any) -> Any:
        out = real(aclient)
        used.append(out)
        return out

    monkeypatch.setattr("finetune_wb.evaluation.answering.with_fast_transport", spy)
    before = len(finetune_emulator.journal)
    report = evaluate(
        examples(12), models=MODEL, client=finetune_emulator.client(), cache=None, progress=False
    )
    assert report.n_unanswered == 0
    assert len(used) == 1 and http_clients.transport_name(used[0]) == choice
    assert used[0]._client.is_closed  # the engine closed the client (and its aiohttp session) it built
    chat = [e for e in finetune_emulator.journal[before:] if e.path == "/v1/chat/completions"]
    assert len(chat) == 12 and all(e.status == 200 for e in chat)
    # the same answers as with the other transport (the emulator's base model is deterministic)
    monkeypatch.setenv(http_clients.ENV, "httpx" if choice == "aiohttp" else "aiohttp")
    again = evaluate(
        examples(12), models=MODEL, client=finetune_emulator.client(), cache=None, progress=False
    )
    assert [r.output for r in again.rows] == [r.output for r in report.rows]


def test_fresh_pool_for_a_callers_async_client_uses_aiohttp(
    finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync evaluate gives a caller's AsyncOpenAI a pool of its own (its private loop): aiohttp's."""
    made: list[Any] = []
    real = http_clients.fresh_http_client

    def spy() -> Any:
        made.append(real())
        return made[-1]

    monkeypatch.setattr("finetune_wb.evaluation.answering.fresh_http_client", spy)
    aclient = finetune_emulator.async_client()
    report = evaluate(examples(4), models=MODEL, client=aclient, cache=None, progress=False)
    assert report.n_unanswered == 0
    assert http_clients.transport_name(aclient) == "httpx"  # the caller's client itself is untouched
    assert len(made) == 1 and "AioHttp" in type(made[0]).__name__ and made[0].is_closed
