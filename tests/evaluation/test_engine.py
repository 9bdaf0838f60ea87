"""The evaluation engine against an in-process fake chat server (httpx.MockTransport under the real client).

The fake speaks the chat-completions wire format, so the real ``openai.AsyncOpenAI`` parses its answers and
raises its real exceptions (with headers) for 429/500/400 — the engine sees exactly what a server would send.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.evaluation import (
    EvalReport,
    ModelTarget,
    Score,
    aevaluate,
    classification,
    evaluate,
    evaluator,
    exact_match,
    llm_judge,
)
from finetune_wb.evaluation.limits import AdaptiveLimit, TokenBucket
from finetune_wb.schema import ChatExample
from tests.fakes.chat import FAST_RETRY, FakeChat, default_answer, make_examples


def run_eval(fake: FakeChat, examples: Any, tmp_path: Path, **kw: Any) -> EvalReport:
    kw.setdefault("models", ["ft:gpt-4o-mini-2024-07-18:org::abc", "gpt-4o-mini-2024-07-18"])
    kw.setdefault("cache", tmp_path / "cache.sqlite3")
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("progress", False)
    return evaluate(examples, client=fake.client(), **kw)


def test_compares_models_and_rerun_makes_zero_requests(tmp_path: Path) -> None:
    fake = FakeChat()
    examples = make_examples(20)
    report = run_eval(fake, examples, tmp_path, evaluators=[exact_match, classification(["Yes", "No"])])
    assert len(fake.requests) == 40
    ft, base = report.models
    assert report.ok and ft.n_answered == base.n_answered == 20
    assert report.metric(ft.label, "exact_match") == 1.0
    base_expected = (
        sum(
            1
            for i, ex in enumerate(examples)
            if default_answer("b", [{"content": f"q{i}{'x' * (i % 2)}={ex.target}"}]).rstrip(".") == ex.target
        )
        / 20
    )
    assert report.metric(base.label, "exact_match") == pytest.approx(base_expected)
    comp = report.comparison(ft.label, base.label, "exact_match")
    assert comp.test == "mcnemar_exact" and comp.a_only is not None and comp.b_only == 0
    assert comp.difference == pytest.approx(1.0 - base_expected)
    assert ft.prompt_tokens == 200 and ft.completion_tokens == 40
    assert ft.estimated_cost_usd == pytest.approx((200 * 0.30 + 40 * 1.20) / 1e6)
    assert base.estimated_cost_usd == pytest.approx((200 * 0.15 + 40 * 0.60) / 1e6)
    clf = report.metrics[ft.label]["classification"].details
    assert clf["confusion_matrix"] == [[13, 0], [0, 7]]

    again = run_eval(fake, examples, tmp_path, evaluators=[exact_match, classification(["Yes", "No"])])
    assert len(fake.requests) == 40  # nothing asked again
    assert [m.n_cached for m in again.models] == [20, 20]
    assert [m.n_requests for m in again.models] == [0, 0]
    assert again.models[0].prompt_tokens == 200  # usage kept in the cache
    assert again.metrics == report.metrics


def test_failed_rows_keep_their_error_are_not_scored_and_are_retried_next_run(tmp_path: Path) -> None:
    fake = FakeChat()
    fake.reject = lambda model, q: 400 if model.startswith("ft") and q.startswith(("q3", "q4")) else None
    examples = make_examples(10)
    report = run_eval(fake, examples, tmp_path)
    assert len(fake.requests) == 20  # a 400 is not retried
    ft = report.models[0]
    assert (ft.n_answered, ft.n_unanswered) == (8, 2)
    failed = [r for r in report.rows if r.error]
    assert {r.example_index for r in failed} == {3, 4}
    assert all(r.output is None and r.scores == {} and "400" in (r.error or "") for r in failed)
    metric = report.metrics[ft.label]["exact_match"]
    assert (metric.value, metric.n, metric.n_unscored) == (1.0, 8, 2)  # not counted as wrong
    assert report.comparison(ft.label, report.models[1].label, "exact_match").n == 8
    assert not report.ok and any("2 of 10 rows unanswered" in w for w in report.warnings)

    fake.reject = lambda model, q: None
    again = run_eval(fake, examples, tmp_path)
    assert fake.requests[20:] == [
        (ft.model, examples[3].messages[1].text),
        (ft.model, examples[4].messages[1].text),
    ]
    assert again.ok


def test_429_and_500_are_retried_and_429_lowers_concurrency(tmp_path: Path) -> None:
    fake = FakeChat(latency=0.005)
    fake.faults = [(429, {"retry-after-ms": "5"})] * 16 + [(500, {})] * 3
    report = run_eval(fake, make_examples(30), tmp_path, models="gpt-4o-mini")
    assert report.ok
    m = report.models[0]
    assert m.n_rate_limited == 16
    assert m.n_retries == 19
    assert m.n_requests == 30 + 19 == len(fake.requests)


def test_persistent_server_errors_give_up_after_the_policy(tmp_path: Path) -> None:
    fake = FakeChat()
    fake.reject = lambda model, q: 503 if q.startswith("q1x=") else None
    policy = RetryPolicy(max_attempts=3, initial_wait=0.001, max_wait=0.001)
    report = run_eval(fake, make_examples(3), tmp_path, models="m", retry=policy)
    assert report.models[0].n_unanswered == 1
    assert sum(1 for _, q in fake.requests if q.startswith("q1x=")) == 3
    assert "503" in (report.rows[1].error or "")


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    fake = FakeChat(latency=0.02)
    run_eval(fake, make_examples(24), tmp_path, models="m", concurrency=4)
    assert fake.peak == 4


def test_adaptive_limit_halves_once_per_generation_and_recovers() -> None:
    limit = AdaptiveLimit(16)
    gen = asyncio.run(limit.acquire())
    limit.rate_limited(gen)
    limit.rate_limited(gen)  # the same burst: no second decrease
    assert limit.limit == 8 and limit.decreases == 1
    limit.rate_limited(gen + 1)
    assert limit.limit == 4
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 5
    for _ in range(200):
        limit.succeeded()
    assert limit.limit == 16


def test_token_bucket_paces_requests() -> None:
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def main() -> list[float]:
        bucket = TokenBucket(1200, clock=lambda: now[0], sleep=fake_sleep)  # 20 a second, no burst
        stamps = []
        for _ in range(5):
            await bucket.acquire()
            stamps.append(now[0])
        tokens = TokenBucket(600, capacity=20, clock=lambda: now[0], sleep=fake_sleep)  # 10 tokens a second
        start = now[0]
        await tokens.acquire(20)  # a full bucket: at once
        await tokens.acquire(50)  # bigger than the bucket: waits for a full one, then borrows
        await tokens.acquire(1)  # pays back the debt first
        stamps.append(now[0] - start)
        return stamps

    assert asyncio.run(main()) == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 2.0 + 3.1])


def test_rpm_limit_paces_the_evaluation(tmp_path: Path) -> None:
    import time

    fake = FakeChat()
    start = time.monotonic()
    run_eval(fake, make_examples(11), tmp_path, models="m", rpm=1200)  # 20/s -> >= 0.5 s for 11
    assert time.monotonic() - start >= 0.45


def test_evaluate_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A Jupyter cell: the loop is running when the synchronous evaluate() is called."""
    fake = FakeChat()

    async def cell() -> EvalReport:
        asyncio.get_running_loop()
        return run_eval(fake, make_examples(5), tmp_path, models="m")

    report = asyncio.run(cell())
    assert report.ok and len(fake.requests) == 5


def test_aevaluate_is_awaitable(tmp_path: Path) -> None:
    fake = FakeChat()
    report = asyncio.run(
        aevaluate(
            make_examples(4), models="m", client=fake.client(), cache=None, progress=False, retry=FAST_RETRY
        )
    )
    assert report.models[0].n_answered == 4 and report.models[0].n_cached == 0


def test_each_model_can_have_its_own_server(tmp_path: Path) -> None:
    here, there = FakeChat(), FakeChat()
    report = evaluate(
        make_examples(3),
        models=[
            ModelTarget(
                "ft:gpt-4o-mini:org::x", client=here.client("http://openai.test/v1"), label="fine-tune"
            ),
            ModelTarget("llama-3-8b", client=there.client("http://vllm.test/v1"), label="replacement"),
        ],
        cache=tmp_path / "c.sqlite3",
        progress=False,
        retry=FAST_RETRY,
    )
    assert {m for m, _ in here.requests} == {"ft:gpt-4o-mini:org::x"}
    assert {m for m, _ in there.requests} == {"llama-3-8b"}
    assert [m.label for m in report.models] == ["fine-tune", "replacement"]
    assert [m.base_url for m in report.models] == ["http://openai.test/v1", "http://vllm.test/v1"]
    assert report.models[1].estimated_cost_usd is None  # unknown price: no guess


def test_same_model_twice_warns(tmp_path: Path) -> None:
    report = run_eval(FakeChat(), make_examples(3), tmp_path, models=["gpt-4o-mini", "gpt-4o-mini"])
    assert [m.label for m in report.models] == ["gpt-4o-mini", "gpt-4o-mini#2"]
    assert report.comparisons[0].same_model
    assert any("same model" in w for w in report.warnings)


def test_jsonl_path_input_and_report_views(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(ex.to_openai()) for ex in make_examples(6)) + "\n")
    report = run_eval(FakeChat(), path, tmp_path)
    assert report.source == str(path)
    df = report.to_pandas()
    assert len(df) == 12 and {"model", "input", "target", "output", "error", "exact_match"} <= set(df.columns)
    assert len(report.to_pandas(kind="metrics")) == 2
    assert len(report.to_pandas(kind="comparisons")) == 1
    text = report.summary()
    assert "exact_match" in text and "mcnemar_exact" in text
    assert "<table>" in report._repr_html_()
    dumped = json.loads(report.model_dump_json())
    assert dumped["evaluators"][0] == {
        "name": "exact_match",
        "type": "function",
        "params": {"ignore_case": True, "normalize_whitespace": True, "strip_punctuation": True},
        "binary": True,
    }


def test_custom_sync_and_async_evaluators_in_an_evaluation(tmp_path: Path) -> None:
    @evaluator
    def answer_length(output: str) -> float:
        return float(len(output))

    @evaluator(name="knows_it")
    async def knows(output: str, target: str, example: ChatExample) -> Score:
        await asyncio.sleep(0)
        return Score(
            value=1.0 if target in output else 0.0, binary=True, explanation=example.messages[1].text
        )

    def broken(output: str) -> bool:
        raise RuntimeError("boom")

    report = run_eval(FakeChat(), make_examples(8), tmp_path, evaluators=[answer_length, knows, broken])
    names = [e.name for e in report.evaluators]
    assert names == ["answer_length", "knows_it", "broken"]
    assert [e.binary for e in report.evaluators] == [False, True, False]
    ft, base = (m.label for m in report.models)
    assert report.metric(ft, "knows_it") == 1.0
    assert report.comparison(ft, base, "answer_length").test == "paired_bootstrap"
    assert report.comparison(ft, base, "knows_it").test == "mcnemar_exact"
    assert report.metrics[ft]["broken"].value is None and report.metrics[ft]["broken"].n_unscored == 8
    assert any("'broken' raised on 16 row(s)" in w for w in report.warnings)
    assert report.rows[0].notes["knows_it"] == "q0=No"


def test_llm_judge_goes_through_the_engine_and_cache(tmp_path: Path) -> None:
    def answer(model: str, messages: list[dict[str, Any]]) -> str:
        if model == "judge":
            text = messages[-1]["content"]
            got = text.split("Assistant's answer:")[1]
            want = text.split("Reference answer:")[1].split("Assistant's answer:")[0]
            return "Reasoning...\nVERDICT: " + ("PASS" if want.strip() in got else "FAIL")
        return default_answer(model, messages)

    fake = FakeChat(answer)
    judge = llm_judge("Same conclusion.", model="judge")
    report = run_eval(fake, make_examples(6), tmp_path, evaluators=[judge, exact_match])
    judged = [q for m, q in fake.requests if m == "judge"]
    # one judge request per distinct (example, answer): identical prompts are asked once, even concurrently
    assert len(judged) == len({(r.example_index, r.output) for r in report.rows}) < 12
    for m in report.models:
        assert report.metric(m.label, "llm_judge") == report.metric(m.label, "exact_match")
    assert report.evaluators[0].params["rubric"] == "Same conclusion."
    before = len(fake.requests)
    run_eval(fake, make_examples(6), tmp_path, evaluators=[judge, exact_match])
    assert len(fake.requests) == before  # judge verdicts are cached too


def test_public_client_path_for_subclassed_clients(tmp_path: Path) -> None:
    """Clients the direct path does not take (Azure, custom subclasses) go through ``client.post``."""

    class CustomClient(openai.AsyncOpenAI):
        pass

    fake = FakeChat()
    fake.faults = [(429, {"retry-after-ms": "1"})]
    client = CustomClient(
        api_key="sk-test",
        base_url="http://custom.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)),
    )
    report = evaluate(
        make_examples(3), models="m", client=client, cache=None, progress=False, retry=FAST_RETRY
    )
    assert report.ok and report.models[0].n_rate_limited == 1 and len(fake.requests) == 4


def test_duck_typed_async_client(tmp_path: Path) -> None:
    """Any object with an async ``chat.completions.create`` works (e.g. a wrapper around another SDK)."""
    from types import SimpleNamespace

    from openai.types.chat import ChatCompletion

    async def create(*, model: str, messages: list[dict[str, Any]], **params: Any) -> ChatCompletion:
        return ChatCompletion.model_validate(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Yes"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    duck = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    report = evaluate(make_examples(3), models="m", client=duck, cache=None, progress=False)
    assert [r.output for r in report.rows] == ["Yes"] * 3
    assert report.models[0].prompt_tokens == 9
