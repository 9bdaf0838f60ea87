"""POST /v1/chat/completions: the request checked as the real API checks it, then answered (in a thread)."""

from __future__ import annotations

import re
import secrets
from typing import Any, cast

from finetune_wb.emulator.answerers import Answer, base_model_answer, count_tokens, prompt_tokens
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.limits import parse_json
from finetune_wb.emulator.state import ApiError
from finetune_wb.emulator.tool_answers import check_tool_request, shape_answer

_TOKEN_END = re.compile(r"\w+|[^\w\s]")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string"


def _invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> ApiError:
    return ApiError(
        400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """``messages`` as the real API requires it: a non-empty list of objects, each with a known ``role``
    and a ``content`` that is a string or a list of content parts (null only for an assistant)."""
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise ApiError(
            400, "Invalid 'messages': empty array. Expected an array with minimum length 1.", param="messages"
        )
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _invalid_type(where, "an object", m)
        role = m.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                400,
                f"Invalid value: {role!r}. Supported values are: {', '.join(repr(r) for r in ROLES)}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = m.get("content")
        if content is None:
            if role != "assistant":
                raise _missing(f"{where}.content")
            continue
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _invalid_type(f"{where}.content", "one of a string or array of objects", content)
        for j, part in enumerate(content):
            part_at = f"{where}.content[{j}]"
            if not isinstance(part, dict):
                raise _invalid_type(part_at, "an object", part)
            if not isinstance(part.get("type"), str):
                raise _missing(f"{part_at}.type")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise _invalid_type(f"{part_at}.text", "a string", part.get("text"))
    return messages


def _int_option(body: dict[str, Any], key: str, *, default: int | None, low: int, high: int) -> Any:
    """An optional integer request option within [low, high]; null means the default; else a 400."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{key}': {value!r}; use an integer between {low} and {high}.", param=key
        )
    return value


def _reply(answer: Answer, limit: Any) -> tuple[dict[str, Any], str, int]:
    """The assistant message, finish reason and completion tokens for an answer."""
    if isinstance(answer, dict):  # a tool call learned from the training data
        calls: list[dict[str, Any]] = [
            {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {
                    "name": str((c.get("function") or {}).get("name", "")),
                    "arguments": str((c.get("function") or {}).get("arguments", "{}")),
                },
            }
            for c in answer["tool_calls"]
            if isinstance(c, dict)
        ]
        tokens = sum(count_tokens(c["function"]["name"] + " " + c["function"]["arguments"]) for c in calls)
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
        return message, "tool_calls", tokens
    finish = "stop"
    if isinstance(limit, int) and limit > 0 and count_tokens(answer) > limit:
        ends = [m.end() for m in _TOKEN_END.finditer(answer)]
        answer, finish = answer[: ends[limit - 1]], "length"
    return {"role": "assistant", "content": answer, "refusal": None}, finish, count_tokens(answer)


def chat_completion(core: Core, raw: bytes) -> dict[str, Any]:
    """The chat.completion object answering the JSON request body ``raw`` (blocking: run it in a thread)."""
    body = parse_json(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model")
    messages = check_messages(body.get("messages"))
    core.shutdowns.check_chat(model, core.now())
    if body.get("stream"):
        raise ApiError(400, "The emulator does not stream; call without stream=True.", param="stream")
    n = _int_option(body, "n", default=1, low=1, high=128)
    limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    limit = _int_option(body, limit_key, default=None, low=1, high=1_000_000)
    check_tool_request(body)
    nn = core.chat_model(model)
    if nn is not None and getattr(nn, "forwards_requests", False):  # vLLM answers (emulator/vllm_backend.py)
        return cast(Any, nn).complete(body)  # type: ignore[no-any-return]
    answer: Answer
    forced = False
    if nn is not None and getattr(nn, "takes_options", False):  # a real model (emulator/hf_chat.py)
        answer = cast(Any, nn).answer(messages, tools=body.get("tools"), max_tokens=limit)
    else:
        answer = base_model_answer(model, messages) if nn is None else nn.answer(messages)
        answer, forced = shape_answer(body, answer, model=model, messages=messages, fine_tuned=nn is not None)
    message, finish, c_tokens = _reply(answer, limit)
    if forced and finish == "tool_calls":
        finish = "stop"  # OpenAI: a call forced by tool_choice ends with "stop"
    p_tokens = prompt_tokens(messages)
    choices = [{"index": i, "message": message, "finish_reason": finish, "logprobs": None} for i in range(n)]
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(core.now()),
        "model": model,
        "choices": choices,
        "system_fingerprint": "fp_emulator",
        "service_tier": "default",
        "usage": {
            "prompt_tokens": p_tokens,
            "completion_tokens": c_tokens * n,
            "total_tokens": p_tokens + c_tokens * n,
        },
    }
