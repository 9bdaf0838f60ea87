"""Format checks for one training example (a parsed JSON line), each problem with a stable code.

These functions look at plain dicts rather than the pydantic models in ``schema.py`` so that they can
report every problem in an example instead of stopping at the first, and so that no input, however
malformed, makes them raise. ``validate.py`` drives them over a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from finetune_wb.validation.report import Severity

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"})
PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})
CHAT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
DPO_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
DPO_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})

Format = Literal["chat", "dpo"]
Add = Callable[[str, "Severity", str], None]


def format_of(obj: Mapping[str, Any]) -> Format | None:
    if any(k in obj for k in DPO_KEYS):
        return "dpo"
    if "messages" in obj:
        return "chat"
    return None


def _is_json_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return False
    return True


def _check_content(where: str, role: Any, msg: Mapping[str, Any], add: Add) -> None:
    content = msg["content"]
    has_call = bool(msg.get("tool_calls")) or bool(msg.get("function_call"))
    if isinstance(content, str):
        if not content and not has_call:
            add("missing_content", "error", f"{where} has empty content; give it text")
        return
    if content is None:
        if not (role == "assistant" and has_call):
            add(
                "missing_content", "error", f"{where} has null content; only assistant tool calls may omit it"
            )
        return
    if not isinstance(content, list):
        add(
            "missing_content",
            "error",
            f"{where} content is {type(content).__name__}; use a string or a list of content parts",
        )
        return
    if not content:
        if not has_call:
            add("missing_content", "error", f"{where} has an empty content list; give it at least one part")
        return
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):  # type: ignore[union-attr]
            continue
        if kind == "image_url":
            image = part.get("image_url")  # type: ignore[union-attr]
            if not (isinstance(image, dict) and isinstance(image.get("url"), str)):
                add("invalid_content_part", "error", f"{where} part {j}: image_url needs {{'url': '...'}}")
            elif role == "assistant":
                add(
                    "image_in_assistant_message",
                    "error",
                    f"{where} part {j}: assistant messages cannot contain images; move it to a user message",
                )
            continue
        add(
            "invalid_content_part",
            "error",
            f"{where} part {j}: expected {{'type': 'text', 'text': ...}} or {{'type': 'image_url', ...}}",
        )


def _check_tool_calls(where: str, role: Any, calls: Any, ids: set[str], add: Add) -> None:
    if role != "assistant":
        add("invalid_tool_call", "error", f"{where}: only assistant messages may have tool_calls")
    if not isinstance(calls, list):
        add("invalid_tool_call", "error", f"{where}: tool_calls must be a list")
        return
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(fn, dict):
            add(
                "invalid_tool_call",
                "error",
                f"{where} tool_calls[{j}] needs 'id', 'type': 'function' and 'function': {{name, arguments}}",
            )
            continue
        ids.add(call["id"])
        if call.get("type", "function") != "function" or not isinstance(fn.get("name"), str):
            add("invalid_tool_call", "error", f"{where} tool_calls[{j}] needs type 'function' and a name")
        if not _is_json_text(fn.get("arguments")):
            add(
                "invalid_tool_call_arguments",
                "error",
                f"{where} tool_calls[{j}].function.arguments must be a string holding valid JSON",
            )


def _check_messages(messages: list[Any], add: Add, *, label: str = "message") -> tuple[bool, bool]:
    """Check a message list; return (has an assistant message, has one that is trained on)."""
    ids: set[str] = set()
    has_assistant = False
    trained = False
    for i, msg in enumerate(messages):
        if type(msg) is dict and len(msg) == 2 and type(msg.get("content")) is str and msg["content"]:
            # fast path for the common {"role": ..., "content": "..."} message
            role = msg.get("role")
            if type(role) is str and role in PLAIN_ROLES:
                if role == "assistant":
                    has_assistant = trained = True
                continue
        where = f"{label} {i}"
        if not isinstance(msg, dict):
            add("data_type", "error", f"{where} is {type(msg).__name__}, not an object with role and content")
            continue
        role = msg.get("role")
        if not isinstance(role, str):
            role = None
        has_call = bool(msg.get("tool_calls")) or bool(msg.get("function_call"))
        missing = [k for k in ("role", "content") if k not in msg]
        if "content" in missing and role == "assistant" and has_call:
            missing.remove("content")
        if missing:
            add("message_missing_key", "error", f"{where} lacks {', '.join(repr(k) for k in missing)}")
        extra = [str(k) for k in msg if k not in MESSAGE_KEYS]
        if extra:
            add(
                "message_unrecognized_key",
                "error",
                f"{where} has unrecognized key(s) {', '.join(map(repr, extra))}; allowed: {sorted(MESSAGE_KEYS)}",
            )
        if "role" in msg and role not in ROLES:
            add("unrecognized_role", "error", f"{where} has role {msg['role']!r}; use one of {list(ROLES)}")
        if "content" in msg:
            _check_content(where, role, msg, add)
        if "weight" in msg:
            weight = msg["weight"]
            if role != "assistant":
                add(
                    "weight_on_non_assistant",
                    "error",
                    f"{where}: weight is only allowed on assistant messages",
                )
            elif type(weight) is not int or weight not in (0, 1):
                add("invalid_weight", "error", f"{where}: weight must be 0 or 1, got {weight!r}")
        if "tool_calls" in msg:
            _check_tool_calls(where, role, msg["tool_calls"], ids, add)
        fc = msg.get("function_call")
        if fc is not None:
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                add("invalid_tool_call", "error", f"{where}: function_call needs a name and arguments")
            elif not _is_json_text(fc.get("arguments")):
                add(
                    "invalid_tool_call_arguments",
                    "error",
                    f"{where}: function_call.arguments must be a string holding valid JSON",
                )
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in ids:
                add(
                    "tool_call_id_mismatch",
                    "error",
                    f"{where}: tool message has tool_call_id {call_id!r}, which matches no earlier assistant"
                    " tool call id",
                )
        if role == "assistant":
            has_assistant = True
            if msg.get("weight", 1) != 0:
                trained = True
    return has_assistant, trained


def _check_tools(container: Mapping[str, Any], add: Add) -> None:
    for key in ("tools", "functions"):
        value = container.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(t, dict) for t in value)):
            add("invalid_tools", "error", f"'{key}' must be a list of objects")
    ptc = container.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        add("invalid_tools", "error", "'parallel_tool_calls' must be true or false")


def check_chat(obj: Mapping[str, Any], add: Add, *, reinforcement: bool = False) -> None:
    """Check a chat example. For reinforcement fine-tuning, extra top-level keys (the grader's reference
    fields) are expected and the conversation ends before the answer, so neither is reported."""
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        add("missing_messages_list", "error", "the example needs a non-empty 'messages' list")
        return
    if len(obj) > 1:  # only "messages" is the common case
        extra = [str(k) for k in obj if k not in CHAT_KEYS]
        if extra and not reinforcement:
            add("unrecognized_example_key", "warning", f"unrecognized key(s) {', '.join(map(repr, extra))}")
        _check_tools(obj, add)
    has_assistant, trained = _check_messages(messages, add)
    if reinforcement:
        return
    if not has_assistant:
        add(
            "example_missing_assistant_message",
            "error",
            "the example has no assistant message; add the answer the model should learn",
        )
    elif not trained:
        add(
            "no_trained_assistant_message",
            "warning",
            "every assistant message has weight 0; nothing to learn",
        )


def check_dpo(obj: Mapping[str, Any], add: Add) -> None:
    inp = obj.get("input")
    extra = [str(k) for k in obj if k not in DPO_KEYS]
    if extra:
        add("unrecognized_example_key", "warning", f"unrecognized key(s) {', '.join(map(repr, extra))}")
    if not isinstance(inp, dict):
        add("dpo_missing_input", "error", "a DPO example needs 'input': {'messages': [...]}")
    else:
        messages = inp.get("messages")
        if not isinstance(messages, list) or not messages:
            add("missing_messages_list", "error", "'input' needs a non-empty 'messages' list")
        else:
            _check_messages(messages, add, label="input message")
        _check_tools(inp, add)
        extra = [str(k) for k in inp if k not in DPO_INPUT_KEYS]
        if extra:
            add("unrecognized_example_key", "warning", f"unrecognized key(s) in 'input': {', '.join(extra)}")
    for key in ("preferred_output", "non_preferred_output"):
        value = obj.get(key)
        ok = isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
        if not ok or value[0].get("role") != "assistant":  # type: ignore[index]
            add(
                "invalid_preference_output",
                "error",
                f"'{key}' must be a list holding exactly one assistant message",
            )
        if ok:
            _check_messages(value, add, label=key)  # type: ignore[arg-type]
