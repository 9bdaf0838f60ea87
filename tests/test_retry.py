from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from finetune_wb._retry import RetryPolicy, is_transient, retry_after_seconds


def _status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/x")
    response = httpx.Response(status, headers=headers or {}, request=request, json={"error": {}})
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 400: openai.BadRequestError}
    return cls.get(status, openai.APIStatusError)("boom", response=response, body=None)


def test_transient_classification() -> None:
    assert is_transient(_status_error(429))
    assert is_transient(_status_error(500))
    assert is_transient(_status_error(503))
    assert not is_transient(_status_error(400))
    assert not is_transient(ValueError("x"))
    assert is_transient(openai.APIConnectionError(request=httpx.Request("GET", "http://127.0.0.1")))
    assert is_transient(ConnectionResetError())


def test_retry_after_headers() -> None:
    assert retry_after_seconds(_status_error(429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(_status_error(429, {"retry-after": "3"})) == 3.0
    assert retry_after_seconds(_status_error(429)) is None
    assert retry_after_seconds(ValueError()) is None


def test_call_retries_transient_then_succeeds_and_honours_retry_after() -> None:
    waits: list[float] = []
    seen: list[int] = []
    policy = RetryPolicy(sleep=waits.append, on_retry=lambda exc, n, w: seen.append(n))
    attempts = iter([_status_error(429, {"retry-after-ms": "1500"}), _status_error(500), None])

    def flaky() -> str:
        exc = next(attempts)
        if exc is not None:
            raise exc
        return "ok"

    assert policy.call(flaky) == "ok"
    assert waits[0] == 1.5  # the server's word, exactly
    assert 0.5 <= waits[1] <= 1.0  # attempt 2: base 0.5 * 2, jittered over [base/2, base]
    assert seen == [1, 2]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=5.0, jitter=False)
    assert [policy.wait_seconds(None, n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_non_transient_is_not_retried_and_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(sleep=lambda s: None, max_attempts=3)
    calls = 0

    def bad() -> None:
        nonlocal calls
        calls += 1
        raise _status_error(400)

    with pytest.raises(openai.BadRequestError):
        policy.call(bad)
    assert calls == 1

    calls = 0

    def always_500() -> None:
        nonlocal calls
        calls += 1
        raise _status_error(500)

    with pytest.raises(openai.InternalServerError):
        policy.call(always_500)
    assert calls == 3


def test_acall_uses_async_sleep() -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(async_sleep=fake_sleep, jitter=False, initial_wait=0.1)
    outcomes = [_status_error(503), "done"]

    async def flaky() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert asyncio.run(policy.acall(flaky)) == "done"
    assert waits == [0.1]


def test_policy_or_default_keeps_the_callers_policy_or_sleeps_with_the_given_sleep() -> None:
    from finetune_wb._retry import DEFAULT_RETRY, policy_or_default

    mine = RetryPolicy(max_attempts=2)
    assert policy_or_default(mine) is mine
    slept: list[float] = []
    policy = policy_or_default(None, slept.append)
    assert policy.max_attempts == DEFAULT_RETRY.max_attempts and policy.sleep is not DEFAULT_RETRY.sleep
    policy.sleep(0.5)
    assert slept == [0.5]
