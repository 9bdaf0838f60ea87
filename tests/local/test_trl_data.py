"""OpenAI JSONL -> TRL rows: the loss mask honours weight-0 assistant turns, tools render, DPO maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb.emulator.hf_chat import parse_tool_calls
from finetune_wb.emulator.trl_data import DataError, dpo_row, load_rows, sft_row


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _masked_text(tokenizer: Any, row: dict[str, Any]) -> str:
    return str(
        tokenizer.decode([t for t, m in zip(row["input_ids"], row["completion_mask"], strict=True) if m])
    )


def test_only_assistant_turns_with_weight_are_trained_on(tokenizer: Any) -> None:
    example = {
        "messages": [
            {"role": "user", "content": "word: apple"},
            {"role": "assistant", "content": "Maybe", "weight": 0},
            {"role": "user", "content": "word: pear"},
            {"role": "assistant", "content": "Yes"},
        ]
    }
    row = sft_row(tokenizer, example, where="line 1", max_length=256)
    assert _masked_text(tokenizer, row) == "Yes<|eos|>"  # not the user turns, not the weight-0 answer
    assert len(row["input_ids"]) == len(row["completion_mask"])


def test_tools_and_tool_calls_render(tokenizer: Any) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    example = {
        "tools": tools,
        "messages": [
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ]},
        ],
    }  # fmt: skip
    row = sft_row(tokenizer, example, where="line 1", max_length=256)
    trained = _masked_text(tokenizer, row)
    assert trained.startswith("<tool_call>") and "get_weather" in trained and "Paris" in trained
    assert parse_tool_calls(trained.replace("<|eos|>", "")) == [
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert parse_tool_calls("just text") == []


def test_errors_name_the_line(tokenizer: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Yes"}]}\n'
        '{"messages": [{"role": "user", "content": "only a question"}]}\n'
    )
    with pytest.raises(DataError, match="training file line 2: no assistant message"):
        load_rows(path, method="supervised", tokenizer=tokenizer, what="training file", max_length=64)
    with pytest.raises(DataError, match="every assistant message has weight 0"):
        sft_row(
            tokenizer,
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b", "weight": 0},
                ]
            },
            where="line 1",
            max_length=64,
        )


def test_dpo_maps_openai_preference_format() -> None:
    row = dpo_row(
        {
            "input": {"messages": [{"role": "user", "content": "word: apple"}]},
            "preferred_output": [{"role": "assistant", "content": "Yes"}],
            "non_preferred_output": [{"role": "assistant", "content": "No"}],
        },
        where="line 1",
    )
    assert row == {
        "prompt": [{"role": "user", "content": "word: apple"}],
        "chosen": [{"role": "assistant", "content": "Yes"}],
        "rejected": [{"role": "assistant", "content": "No"}],
    }
    with pytest.raises(DataError, match="line 3: expected 'non_preferred_output'"):
        dpo_row(
            {"input": {"messages": [{"role": "user", "content": "x"}]}, "preferred_output": [{}]},
            where="line 3",
        )
