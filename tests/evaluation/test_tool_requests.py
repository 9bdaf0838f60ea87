"""What a request carries (tools, tool_choice, response_format), what the cache keeps (tool calls), and old
cache files without the new column."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import evaluate
from finetune_wb.evaluation.cache import AnswerCache, CachedAnswer
from finetune_wb.evaluation.requests import check_tool_choice, normalise_response_format
from tests.evaluation.tool_data import TOOLS, tool_examples

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"


def _capturing_client(bodies: list[dict[str, Any]]) -> openai.AsyncOpenAI:
    """An AsyncOpenAI whose HTTP transport records each body and answers with one tool call."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":'},
                }
            ],
        }
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            },
        )

    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


def test_the_body_carries_the_examples_tools_and_the_callers_constraints(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    plain = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    report = evaluate(
        [tool_examples(1)[0], plain],
        models=BASE,
        evaluators=["tool_call_match"],
        client=_capturing_client(bodies),
        cache=None,
        progress=False,
        tool_choice="get_weather",
        response_format="json_object",
    )
    with_tools, without = sorted(bodies, key=lambda b: "tools" not in b)
    assert with_tools["tools"] == TOOLS and with_tools["parallel_tool_calls"] is True
    assert with_tools["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert with_tools["response_format"] == {"type": "json_object"}
    # no tools: no tool_choice / parallel_tool_calls (the API refuses them without tools)
    assert "tools" not in without and "tool_choice" not in without and "parallel_tool_calls" not in without
    assert without["response_format"] == {"type": "json_object"}
    assert report.params["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    row = next(r for r in report.rows if r.example_index == 0)
    # arguments exactly as the model wrote them (not JSON here): kept, scored 0, with the reason
    assert row.tool_calls == [{"name": "get_weather", "arguments": '{"city":'}]
    assert row.finish_reason == "tool_calls" and row.output == ""
    assert row.scores["tool_call_match"] == 0.0 and "arguments are not JSON" in row.notes["tool_call_match"]
    frame = report.to_pandas()
    assert list(frame["tool_calls"]) == ['get_weather({"city":)'] * 2


def test_tool_calls_are_cached_and_other_tools_ask_again(finetune_emulator: Any, tmp_path: Path) -> None:
    emu = finetune_emulator
    cache = tmp_path / "c.sqlite3"
    examples = tool_examples(4)
    kw: dict[str, Any] = {"models": BASE, "evaluators": ["tool_call_match"], "client": emu.client()}
    kw |= {"cache": cache, "progress": False, "tool_choice": "required"}
    first = evaluate(examples, **kw)
    assert all(r.tool_calls for r in first.rows)  # a base model asked to call a tool does
    asked = sum(1 for e in emu.journal if e.path == CHAT)
    again = evaluate(examples, **kw)
    assert sum(1 for e in emu.journal if e.path == CHAT) == asked  # every answer from the cache ...
    assert [r.tool_calls for r in again.rows] == [r.tool_calls for r in first.rows]  # ... with its calls
    assert all(r.cached for r in again.rows)
    with AnswerCache(cache) as store:  # the ids stay in the cache
        (key,) = [k for (k,) in store._run("SELECT key FROM answers")][:1]
        hit = store.get(key)
        assert hit is not None and hit.tool_calls and hit.tool_calls[0]["id"].startswith("call_")
    other_tools = [dict(e, tools=[e["tools"][1]]) for e in examples]  # same prompts, other tools
    evaluate(other_tools, **kw)
    assert sum(1 for e in emu.journal if e.path == CHAT) == asked + 4
    auto = evaluate(examples, **{**kw, "tool_choice": None})  # no tool_choice: asked again, no call
    assert sum(1 for e in emu.journal if e.path == CHAT) == asked + 8
    assert not any(r.tool_calls for r in auto.rows)


def test_an_old_cache_file_without_the_extra_column_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE answers (key TEXT PRIMARY KEY, base_url TEXT NOT NULL, model TEXT NOT NULL, output TEXT NOT "
        "NULL, prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, "
        "finish_reason TEXT, created REAL NOT NULL)"
    )
    conn.execute("INSERT INTO answers VALUES ('k', 'u', 'm', 'Yes', 3, 1, 'stop', 0)")
    conn.commit()
    conn.close()
    with AnswerCache(path) as store:
        assert store.get("k") == CachedAnswer(
            output="Yes", prompt_tokens=3, completion_tokens=1, finish_reason="stop"
        )
        calls = [{"id": "c", "name": "f", "arguments": "{}"}]
        store.put(
            "k2", base_url="u", model="m", answer=CachedAnswer(output="", tool_calls=calls, refusal="no")
        )
    with AnswerCache(path) as store:  # opened twice: the column is added once
        got = store.get("k2")
        assert got is not None and (got.tool_calls, got.refusal) == (calls, "no")
        assert store.get("k") is not None and store.get("k").tool_calls is None  # type: ignore[union-attr]


def test_bad_tool_choice_and_response_format_fail_before_any_request(finetune_emulator: Any) -> None:
    with pytest.raises(EvaluationError, match="tool_choice 'sometimes!'"):
        check_tool_choice("sometimes!")
    assert check_tool_choice("auto") == "auto"
    with pytest.raises(EvaluationError, match="not a valid JSON Schema"):
        normalise_response_format({"type": "object", "properties": 3})
    with pytest.raises(EvaluationError, match="json_schema needs"):
        normalise_response_format({"type": "json_schema", "json_schema": {"schema": {}}})
    wrapped = normalise_response_format({"type": "object"})
    assert wrapped == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": False},
    }
    with pytest.raises(EvaluationError, match="not a valid JSON Schema"):
        evaluate(
            tool_examples(2),
            models=BASE,
            client=finetune_emulator.client(),
            cache=None,
            progress=False,
            response_format={"type": 5},
        )
    assert not [e for e in finetune_emulator.journal if e.path == CHAT]
