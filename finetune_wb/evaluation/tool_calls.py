"""Tool calls as the evaluation sees them: read from answers and references, parsed, shown to people.

A call is kept as the model produced it: ``{"id", "name", "arguments"}`` where ``arguments`` is the string
the model wrote (it may not be JSON; :func:`parse_arguments` says why). The legacy ``function_call`` of an
assistant message counts as one call. :func:`render_calls` writes calls the way people read them,
``get_weather({"city": "Paris"})``, for the W&B table and text summaries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = [
    "NO_CALL",
    "calls_label",
    "calls_of_message",
    "parse_arguments",
    "public_calls",
    "reference_calls",
    "render_calls",
]

NO_CALL = "<no call>"
"""The label of an answer (or reference) that calls no function, in confusion tables."""


def calls_of_message(message: Any) -> list[dict[str, str]]:
    """``[{"id", "name", "arguments"}]`` of an assistant message (a dict, or a pydantic ``Message``)."""
    if message is None:
        return []
    if hasattr(message, "model_dump"):
        message = message.model_dump(mode="json", exclude_none=True)
    if not isinstance(message, dict):
        return []
    out: list[dict[str, str]] = []
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        out.append(
            {
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "arguments": _as_text(function.get("arguments")),
            }
        )
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and not out:
        out.append(
            {"id": "", "name": str(legacy.get("name") or ""), "arguments": _as_text(legacy.get("arguments"))}
        )
    return out


def _as_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)  # a server that sent an object: keep it readable


def reference_calls(example: ChatExample) -> list[dict[str, str]]:
    """The tool calls of the example's last assistant message (the reference), [] when it is text."""
    last = max(i for i, m in enumerate(example.messages) if m.role == "assistant")
    return calls_of_message(example.messages[last])


def parse_arguments(arguments: str) -> tuple[bool, Any, str]:
    """``(ok, value, reason)``: the arguments as JSON; an empty string is ``{}`` (no arguments)."""
    if not arguments.strip():
        return True, {}, ""
    try:
        return True, json.loads(arguments), ""
    except ValueError as exc:
        return False, None, f"arguments are not JSON ({exc}): {arguments[:120]!r}"


def public_calls(calls: Sequence[dict[str, str]] | None) -> list[dict[str, str]]:
    """What ``--json`` rows show: ``[{"name", "arguments"}]`` (the ids are in the cache)."""
    return [{"name": c.get("name", ""), "arguments": c.get("arguments", "")} for c in calls or []]


def render_calls(calls: Sequence[dict[str, str]] | None) -> str:
    """``get_weather({"city": "Paris"})``, one call a line; arguments that are not JSON are shown as they are."""
    lines = []
    for call in calls or []:
        ok, value, _ = parse_arguments(call.get("arguments", ""))
        args = json.dumps(value, ensure_ascii=False) if ok else call.get("arguments", "")
        lines.append(f"{call.get('name', '')}({args})")
    return "\n".join(lines)


def calls_label(calls: Sequence[dict[str, str]] | None) -> str:
    """The called function names of one answer, sorted and joined with ``+``; :data:`NO_CALL` for none."""
    names = sorted(c.get("name", "") for c in calls or [])
    return "+".join(names) if names else NO_CALL
