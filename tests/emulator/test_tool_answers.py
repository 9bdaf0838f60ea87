"""The emulator's chat completions with tools and response formats: shapes as OpenAI sends them."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.evaluation.tool_data import TOOLS, tool_examples
from tests.fakes.emulator_helpers import jsonl, wait_job

BASE = "gpt-4o-mini-2024-07-18"
ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def _fine_tune(client: Any) -> str:
    file = client.files.create(file=("train.jsonl", jsonl(tool_examples(16))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=file.id)
    return str(wait_job(client, job.id).fine_tuned_model)


def test_a_tool_fine_tune_answers_with_the_call_it_learned(finetune_emulator_client: Any) -> None:
    client = finetune_emulator_client
    model = _fine_tune(client)
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ASK, tools=TOOLS)
    body = json.loads(raw.text)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None and message["refusal"] is None and message["role"] == "assistant"
    (call,) = message["tool_calls"]
    assert set(call) == {"id", "type", "function"} and call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
    # the typed client reads it too
    typed = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS)
    assert typed.choices[0].message.tool_calls[0].function.name == "get_weather"
    # told not to call a tool, it answers in words
    words = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="none")
    assert words.choices[0].message.tool_calls is None and "get_weather" in words.choices[0].message.content


def test_a_base_model_calls_a_tool_only_when_tool_choice_asks(finetune_emulator_client: Any) -> None:
    client = finetune_emulator_client
    auto = client.chat.completions.create(model=BASE, messages=ASK, tools=TOOLS)
    assert auto.choices[0].message.tool_calls is None and auto.choices[0].finish_reason == "stop"
    required = client.chat.completions.create(model=BASE, messages=ASK, tools=TOOLS, tool_choice="required")
    (call,) = required.choices[0].message.tool_calls
    assert call.function.name == "get_weather"  # the first tool
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # required keys, from the prompt's words
    assert required.choices[0].finish_reason == "stop"  # a forced call ends with "stop", as OpenAI's does
    named = client.chat.completions.create(
        model=BASE,
        messages=ASK,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"


def test_response_format_is_answered_with_json(finetune_emulator_client: Any) -> None:
    client = finetune_emulator_client
    obj = client.chat.completions.create(model=BASE, messages=ASK, response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content), dict)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}, "n": {"type": "integer"}},
        "required": ["city", "sunny", "n"],
    }
    shaped = client.chat.completions.create(
        model=BASE,
        messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
    )
    value = json.loads(shaped.choices[0].message.content)
    assert (
        set(value) == {"city", "sunny", "n"}
        and isinstance(value["sunny"], bool)
        and isinstance(value["n"], int)
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format.json_schema.name"),
    ],
)
def test_what_the_api_refuses_is_a_400(
    finetune_emulator_client: Any, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        finetune_emulator_client.chat.completions.create(model=BASE, messages=ASK, **extra)
    assert info.value.body["param"] == param  # type: ignore[index]
