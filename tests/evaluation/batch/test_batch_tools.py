"""Batch mode sends each row's own tools / tool_choice / response_format, exactly as the synchronous engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_wb.evaluation import BatchOptions, evaluate
from finetune_wb.schema import ChatExample
from tests.evaluation.batch.conftest import BASE, FAST_RETRY, posts

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def _tool_examples(n: int) -> list[ChatExample]:
    rows = []
    for i in range(n):
        tool = WEATHER if i % 2 else TIME
        name = tool["function"]["name"]  # type: ignore[index]
        rows.append(
            ChatExample.model_validate(
                {
                    "messages": [
                        {"role": "user", "content": f"Question {i} about Paris"},
                        {
                            "role": "assistant",
                            "tool_calls": [
                                {
                                    "id": f"call_{i}",
                                    "type": "function",
                                    "function": {"name": name, "arguments": '{"city": "Paris"}'},
                                }
                            ],
                        },
                    ],
                    "tools": [tool],
                }
            )
        )
    return rows


def _evaluate(emu: Any, cache: Path, **extra: Any) -> Any:
    return evaluate(
        _tool_examples(6),
        models=[BASE],
        client=emu.client(),
        cache=cache,
        progress=False,
        retry=FAST_RETRY,
        evaluators=["tool_call_match"],
        tool_choice="required",
        **extra,
    )


def test_batch_lines_carry_each_rows_tools_and_sync_reuses_their_answers(emu: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    batch = BatchOptions(poll_interval=0.01, max_poll_interval=0.05)
    report = _evaluate(emu, cache, mode="batch", batch=batch)
    assert report.ok and posts(emu, "/v1/batches") == 1 and posts(emu, "/v1/chat/completions") == 0
    # the base model was forced to call a tool: each row calls the one tool its own request offered
    called = [r.tool_calls[0]["name"] for r in report.rows]
    assert called == ["get_time" if i % 2 == 0 else "get_weather" for i in range(6)]

    sync = _evaluate(emu, cache)  # same rows, same tools: every answer is the batch's
    assert sync.ok and posts(emu, "/v1/chat/completions") == 0
    assert [r.tool_calls for r in sync.rows] == [r.tool_calls for r in report.rows]

    other = _evaluate(emu, cache, mode="batch", batch=batch, response_format="json_object")
    assert other.ok and posts(emu, "/v1/batches") == 2  # other request parameters: asked again
