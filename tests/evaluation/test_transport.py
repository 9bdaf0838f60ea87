"""The engine's direct HTTP path: same headers and timeout as the client, and a safe fall-back.

The direct path uses ``openai`` internals for speed; these tests pin that it sends what the client would
send, and that a future ``openai`` whose internals differ degrades to the public path for good instead of
failing rows.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from finetune_wb.evaluation import evaluate, transport
from finetune_wb.evaluation.answering import UNREACHED_ATTEMPTS
from finetune_wb.evaluation.transport import DirectPost
from tests.fakes.chat import FAST_RETRY, FakeChat, make_examples


class Recorder:
    """A fake chat server that keeps every request (headers and timeout extensions included)."""

    def __init__(self) -> None:
        self.fake = FakeChat()
        self.requests: list[httpx.Request] = []

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.fake.handler(request)

    def client(self, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://fake.test/v1",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)),
            **kw,
        )


def run(client: Any, n: int = 3) -> Any:
    return evaluate(make_examples(n), models="m", client=client, cache=None, progress=False, retry=FAST_RETRY)


def test_direct_path_sends_the_clients_headers_and_timeout() -> None:
    rec = Recorder()
    client = rec.client(
        organization="org-123", project="proj-456", default_headers={"X-Team": "evals"}, timeout=12.5
    )
    assert DirectPost.for_client(client.with_options(max_retries=0)) is not None  # the direct path is used
    report = run(client)
    assert report.ok and len(rec.requests) == 3
    for request in rec.requests:
        assert request.headers["authorization"] == "Bearer sk-test"
        assert request.headers["openai-organization"] == "org-123"
        assert request.headers["openai-project"] == "proj-456"
        assert request.headers["x-team"] == "evals"
        assert request.headers["user-agent"].startswith("AsyncOpenAI/Python")
        assert request.extensions["timeout"]["read"] == 12.5


def test_direct_path_respects_a_timeout_set_with_with_options() -> None:
    """``with_options(timeout=...)`` shares the HTTP client but not its timeout: the request must carry it."""
    rec = Recorder()
    client = rec.client(timeout=600.0).with_options(timeout=httpx.Timeout(3.0, connect=1.0))
    assert run(client).ok
    timeouts = {tuple(sorted(r.extensions["timeout"].items())) for r in rec.requests}
    assert timeouts == {(("connect", 1.0), ("pool", 3.0), ("read", 3.0), ("write", 3.0))}


def test_direct_path_headers_match_the_public_path() -> None:
    """Every header the client's own request machinery sends (bar per-attempt bookkeeping) is sent."""
    rec = Recorder()
    client = rec.client(organization="org-1", project="proj-1", default_headers={"X-A": "1"}, timeout=9.0)
    assert run(client, n=1).ok
    direct = rec.requests[-1]

    public = Recorder()
    pclient = public.client(organization="org-1", project="proj-1", default_headers={"X-A": "1"}, timeout=9.0)

    async def call() -> None:
        await pclient.with_options(max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )

    import asyncio

    asyncio.run(call())
    expected = {
        k.lower(): v
        for k, v in public.requests[-1].headers.items()
        if k.lower() not in {"x-stainless-retry-count", "content-length"}
    }
    got = {k.lower(): v for k, v in direct.headers.items() if k.lower() != "content-length"}
    assert {k: got.get(k) for k in expected} == expected
    assert direct.extensions["timeout"] == public.requests[-1].extensions["timeout"]


class _PostWithoutTimeout:
    """An HTTP client from an imagined future whose ``post`` takes no ``timeout``: calling it is a TypeError."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.timeout = real.timeout
        self.calls = 0

    async def post(self, url: str, **kwargs: Any) -> Any:
        self.calls += 1
        if "timeout" in kwargs:
            raise TypeError("post() got an unexpected keyword argument 'timeout'")
        return await self.real.post(url, **kwargs)


def test_a_type_error_from_the_direct_path_falls_back_to_the_public_path_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posts: list[_PostWithoutTimeout] = []
    real_init = DirectPost.__init__

    def init(self: DirectPost, aclient: Any) -> None:
        real_init(self, aclient)
        self.http = _PostWithoutTimeout(self.http)
        posts.append(self.http)

    monkeypatch.setattr(DirectPost, "__init__", init)
    monkeypatch.setitem(transport._DIRECT, "usable", True)
    rec = Recorder()
    report = run(rec.client(), n=6)
    assert report.ok and [r.output for r in report.rows] == [
        ("Yes" if len(m.prompt_messages()[-1]["content"]) % 2 == 0 else "No.") for m in make_examples(6)
    ]
    assert len(rec.requests) == 6  # each row asked once, through the public path
    assert [p.calls for p in posts] == [1]  # tried once, then switched off for every later request
    assert run(rec.client(), n=2).ok and len(rec.requests) == 8
    assert [p.calls for p in posts] == [1]  # later evaluations in this process do not try it again
    assert DirectPost.for_client(rec.client()) is None


def test_an_attribute_error_from_the_error_mapping_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 on the direct path whose error mapping is gone: that request is re-sent publicly, none is lost."""
    real_init = DirectPost.__init__

    def init(self: DirectPost, aclient: Any) -> None:
        real_init(self, aclient)

        def gone(response: Any) -> Any:
            raise AttributeError("'AsyncOpenAI' object has no attribute '_make_status_error_from_response'")

        self.make_error = gone

    monkeypatch.setattr(DirectPost, "__init__", init)
    monkeypatch.setitem(transport._DIRECT, "usable", True)
    rec = Recorder()
    rec.fake.faults = [(429, {"retry-after-ms": "1"})]
    report = run(rec.client(), n=4)
    assert report.ok and all(r.error is None for r in report.rows)
    # the 429 answered the direct attempt; that request was re-sent publicly (and got an answer)
    assert len(rec.requests) == 5 and rec.fake.faults == []


def test_clients_without_the_internals_use_the_public_path() -> None:
    rec = Recorder()
    client = rec.client()
    assert DirectPost.for_client(client) is not None
    del client._client  # as if a future openai renamed it
    assert DirectPost.for_client(client) is None


def test_token_provider_clients_take_the_public_path() -> None:
    async def token() -> str:
        return "sk-rotating"

    rec = Recorder()
    client = openai.AsyncOpenAI(
        api_key=token,
        base_url="http://fake.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(rec.handler)),
    )
    assert DirectPost.for_client(client) is None
    assert run(client, n=2).ok
    assert {r.headers["authorization"] for r in rec.requests} == {"Bearer sk-rotating"}


def test_raw_public_post_refusal_falls_back_to_typed_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    raw_class = transport.raw_response_class()
    refused: list[Any] = []

    class Refusing(openai.AsyncOpenAI):
        async def post(self, path: str, *args: Any, cast_to: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if cast_to is raw_class:
                refused.append(path)
                raise TypeError("cast_to must be a model class")
            return await super().post(path, *args, cast_to=cast_to, **kwargs)

    monkeypatch.setitem(transport._RAW_POST, "usable", True)
    rec = Recorder()
    client = Refusing(
        api_key="sk-test",
        base_url="http://fake.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(rec.handler)),
    )
    report = run(client, n=1)  # one row first: the refusal is learnt before other requests start
    assert report.ok and refused == ["/chat/completions"]
    assert transport._RAW_POST["usable"] is False
    assert run(client, n=3).ok and len(refused) == 1  # later requests go straight to the typed call


def test_a_server_that_never_answers_gives_up_after_a_few_attempts() -> None:
    """A wrong base URL must not cost minutes of back-off: rows keep a clear error and are retried next run."""
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(str(request.url))
        raise httpx.ConnectError("All connection attempts failed", request=request)

    client = openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://wrong-host.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
    )
    report = evaluate(
        make_examples(2), models="m", client=client, cache=None, progress=False, retry=FAST_RETRY
    )
    assert report.n_unanswered == 2
    assert len(attempts) == 2 * UNREACHED_ATTEMPTS < 2 * FAST_RETRY.max_attempts
    error = report.rows[0].error or ""
    assert "ConnectError" in error and "http://wrong-host.test/v1/chat/completions" in error


def test_dropped_connections_to_a_server_that_answered_get_every_retry() -> None:
    fake = FakeChat()
    calls = {"n": 0}

    async def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if 2 <= calls["n"] <= 5:  # after one answer, four dropped connections in a row
            raise httpx.ConnectError("connection reset", request=request)
        return await fake.handler(request)

    client = openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://fake.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(flaky)),
    )
    report = evaluate(
        make_examples(2),
        models="m",
        client=client,
        cache=None,
        progress=False,
        retry=FAST_RETRY,
        concurrency=1,
    )
    assert report.ok and calls["n"] == 6
