"""Test data for tool calls, structured outputs and preference (DPO) evaluation (plain functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Dakar"]


def call(name: str, args: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return {
        "id": f"call_{name}_{i}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def tool_example(i: int, city: str) -> dict[str, Any]:
    """Even i: the weather of ``city``; odd i: its time; every 4th: both, in parallel."""
    if i % 4 == 3:
        question = f"Tell me both the weather and the local time in {city}."
        calls = [call("get_weather", {"city": city}, i), call("get_time", {"city": city}, i)]
    elif i % 2 == 0:
        question, calls = (
            f"What is the weather like in {city} today?",
            [call("get_weather", {"city": city}, i)],
        )
    else:
        question, calls = f"What time is it now in {city}?", [call("get_time", {"city": city}, i)]
    return {
        "messages": [
            {"role": "system", "content": "Use the tools to answer."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": None, "tool_calls": calls},
        ],
        "tools": TOOLS,
        "parallel_tool_calls": True,
    }


def tool_examples(n: int = 16) -> list[dict[str, Any]]:
    return [tool_example(i, CITIES[i % len(CITIES)]) for i in range(n)]


def dpo_example(i: int) -> dict[str, Any]:
    topic = ["refund", "delivery", "password", "invoice", "warranty", "upgrade"][i % 6]
    return {
        "input": {
            "messages": [{"role": "user", "content": f"Customer {i} asks about their {topic} (case {i})."}]
        },
        "preferred_output": [
            {
                "role": "assistant",
                "content": f"Happy to help with your {topic}: here are the steps to follow.",
            }
        ],
        "non_preferred_output": [{"role": "assistant", "content": "Not my problem, contact someone else."}],
    }


def dpo_examples(n: int = 12) -> list[dict[str, Any]]:
    return [dpo_example(i) for i in range(n)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
