"""Training and validation files as W&B Tables: any number of messages, tools, and DPO records.

One row per JSONL line, the same columns for every shape, so chat and preference data read alike:
``line, format, n_messages, system, prompt, completion, rejected, tools, weight``. ``prompt`` renders every
message before the final assistant answer as ``role: text`` lines; ``completion`` is that answer (or the
preferred output of a DPO record) and ``rejected`` the non-preferred output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from finetune_wb.schema import content_text

INVALID = object()  # marks a line that is not JSON

COLUMNS: list[str | int] = [
    "line",
    "format",
    "n_messages",
    "system",
    "prompt",
    "completion",
    "rejected",
    "tools",
    "weight",
]


def message_text(message: Any) -> str:
    """Text of one message, including tool / function calls when there is no content."""
    if not isinstance(message, dict):
        return str(message)
    text = content_text(message.get("content"), show_other_parts=True)
    calls = message.get("tool_calls") or ([message["function_call"]] if message.get("function_call") else [])
    rendered = []
    for call in calls:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        rendered.append(f"{fn.get('name', '?')}({fn.get('arguments', '')})")
    if rendered:
        text = (text + "\n" if text else "") + "[calls] " + "; ".join(rendered)
    return text


def _render(messages: list[Any]) -> str:
    lines = []
    for m in messages:
        role = m.get("role", "?") if isinstance(m, dict) else "?"
        name = m.get("name") if isinstance(m, dict) else None
        label = f"{role}({name})" if name else role
        lines.append(f"{label}: {message_text(m)}")
    return "\n".join(lines)


def classify(obj: Any) -> str:
    if isinstance(obj, dict):
        if isinstance(obj.get("messages"), list):
            return "chat"
        if "preferred_output" in obj or "non_preferred_output" in obj:
            return "dpo"
        if "prompt" in obj and "completion" in obj:
            return "completion"
    return "other"


def _last_assistant_index(messages: list[Any]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "assistant":
            return i
    return None


def target_text(obj: Any) -> str | None:
    """Text of the last assistant message of a chat example (None when there is none)."""
    messages = obj.get("messages") if isinstance(obj, dict) else None
    if not isinstance(messages, list):
        return None
    i = _last_assistant_index(messages)
    return None if i is None else message_text(messages[i])


def iter_records(data: bytes) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or INVALID) for every non-blank line, streaming."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except ValueError:
            yield number, INVALID


def describe(obj: Any) -> tuple[str, int, bool]:
    """(format, number of messages, has tools) of one parsed record."""
    fmt = classify(obj)
    messages = _messages_of(obj, fmt)
    has_tools = bool(
        isinstance(obj, dict) and (obj.get("tools") or obj.get("functions") or _input(obj).get("tools"))
    )
    return fmt, len(messages), has_tools


def _input(obj: dict[str, Any]) -> dict[str, Any]:
    value = obj.get("input")
    return value if isinstance(value, dict) else {}


def _messages_of(obj: Any, fmt: str) -> list[Any]:
    if fmt == "chat":
        return list(obj["messages"])
    if fmt == "dpo":
        msgs = _input(obj).get("messages")
        return list(msgs) if isinstance(msgs, list) else []
    return []


def _outputs_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(message_text(m) for m in value)
    if isinstance(value, dict):
        return message_text(value)
    return "" if value is None else str(value)


def example_row(line: int, obj: Any) -> list[Any]:
    """One table row for a parsed JSONL object (see COLUMNS)."""
    fmt = classify(obj)
    system = prompt = completion = rejected = ""
    tools: list[Any] = []
    weight = None
    n_messages = 0
    if fmt in ("chat", "dpo"):
        messages = _messages_of(obj, fmt)
        n_messages = len(messages)
        tools = list(obj.get("tools") or obj.get("functions") or _input(obj).get("tools") or [])
        sys_msgs = [m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
        rest = [m for m in messages if m not in sys_msgs]
        system = "\n".join(message_text(m) for m in sys_msgs)
        if fmt == "chat":
            last = _last_assistant_index(rest)
            if last is not None:
                completion = message_text(rest[last])
                weight = rest[last].get("weight") if isinstance(rest[last], dict) else None
                rest = rest[:last]
            prompt = _render(rest)
        else:
            prompt = _render(rest)
            completion = _outputs_text(obj.get("preferred_output"))
            rejected = _outputs_text(obj.get("non_preferred_output"))
    elif fmt == "completion":
        prompt, completion = str(obj.get("prompt", "")), str(obj.get("completion", ""))
    else:
        prompt = json.dumps(obj, ensure_ascii=False)[:2000]
    tool_names = []
    for t in tools:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        tool_names.append(str(fn.get("name", "?")))
    return [
        line,
        fmt,
        n_messages,
        system,
        prompt,
        completion,
        rejected,
        ", ".join(tool_names),
        None if weight is None else float(weight),
    ]


def example_rows(data: bytes, *, max_rows: int | None = None) -> list[list[Any]]:
    """Table rows for the first ``max_rows`` records (None: all); stops reading once it has them."""
    rows: list[list[Any]] = []
    for number, obj in iter_records(data):
        if max_rows is not None and len(rows) >= max_rows:
            break
        if obj is INVALID:
            rows.append([number, "invalid", 0, "", "", "", "", "", None])
        else:
            rows.append(example_row(number, obj))
    return rows


def examples_table(data: bytes, *, max_rows: int | None = None) -> Any:
    """A ``wandb.Table`` of the file's examples (the first ``max_rows``; None for all)."""
    import wandb

    from finetune_wb._secrets import scrub

    return wandb.Table(columns=COLUMNS, data=scrub(example_rows(data, max_rows=max_rows)))
