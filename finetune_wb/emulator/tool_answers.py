"""Tools and structured outputs in the emulator's chat completions.

The request is checked as the API checks it (``tools`` entries, ``tool_choice`` and
``parallel_tool_calls`` only with tools, a named ``tool_choice`` among the tools, ``response_format``'s
type). Then the model's answer is shaped by what the request asked for:

* a fine-tune answers with the tool call of its nearest training prompt (see :mod:`.answerers`); with
  ``tool_choice="none"`` it answers in words instead, and a forced call (``"required"`` or a named
  function) it did not learn is made up from the function's parameter schema;
* a base model calls a tool only when asked to with ``tool_choice`` (``"required"``: the first tool; a
  named function: that one), with arguments made up from the parameter schema and the prompt's words;
* ``response_format`` ``json_object`` / ``json_schema``: the text is JSON (an answer that already is JSON is
  kept; anything else becomes ``{"answer": text}`` or an object shaped by the schema).

A forced call ends with ``finish_reason: "stop"`` (as OpenAI documents for ``tool_choice`` that requires a
call), a call the model chose with ``"tool_calls"``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from finetune_wb.emulator.answerers import Answer, prompt_text
from finetune_wb.emulator.state import ApiError

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def check_tool_request(body: dict[str, Any]) -> None:
    """400 for what the API refuses: malformed tools, tool options without tools, an unknown named tool."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools", "Invalid type for 'tools': expected an array of objects.")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
                raise _invalid(f"tools[{i}]", f"Invalid 'tools[{i}]': expected a function tool object.")
            if not isinstance(function.get("name"), str) or not _NAME.match(function["name"]):
                raise _invalid(
                    f"tools[{i}].function.name",
                    f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string "
                    "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                )
    for option in ("tool_choice", "parallel_tool_calls"):
        if body.get(option) is not None and not tools:
            raise _invalid(
                option,
                f"Invalid value for '{option}': '{option}' is only allowed when 'tools' are specified.",
            )
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in [t["function"]["name"] for t in tools or []]:
            raise _invalid(
                "tool_choice", f"Invalid value for 'tool_choice': no tool named {name!r} in 'tools'."
            )
    elif choice is not None and choice not in ("none", "auto", "required"):
        raise _invalid("tool_choice", f"Invalid value for 'tool_choice': {choice!r}.")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise _invalid(
                "response_format.type",
                f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and 'json_schema'.",
            )
        if kind == "json_schema" and not isinstance(
            (response_format.get("json_schema") or {}).get("name"), str
        ):
            raise ApiError(
                400,
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )


def _pick(seed: str, options: list[Any]) -> Any:
    return options[hashlib.sha256(seed.encode()).digest()[0] % len(options)]


def instance_of(schema: Any, text: str, seed: str, depth: int = 0) -> Any:
    """A value that fits ``schema`` (the common keywords), filled with words and numbers of ``text``."""
    if not isinstance(schema, dict) or depth > 6:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _pick(seed, schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        wanted = schema.get("required") or list(props)
        return {k: instance_of(props.get(k, {}), text, f"{seed}.{k}", depth + 1) for k in wanted}
    if kind == "array":
        count = max(int(schema.get("minItems") or 0), 1)
        return [instance_of(schema.get("items") or {}, text, f"{seed}[{i}]", depth + 1) for i in range(count)]
    if kind in ("integer", "number"):
        numbers = _NUMBER.findall(text)
        value = float(numbers[0]) if numbers else 0.0
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return bool(_pick(seed, [True, False]))
    if kind == "null":
        return None
    words = [w for w in _WORD.findall(text) if w[0].isupper()] or _WORD.findall(text) or ["value"]
    return words[-1]


def _made_up_call(tool: dict[str, Any], messages: list[Any], model: str) -> dict[str, Any]:
    function = tool["function"]
    text = prompt_text(messages)
    args = instance_of(function.get("parameters") or {"type": "object"}, text, f"{model}\n{text}")
    return {"type": "function", "function": {"name": function["name"], "arguments": json.dumps(args)}}


def _called_names(answer: Answer) -> list[str]:
    if not isinstance(answer, dict):
        return []
    return [
        str((c.get("function") or {}).get("name", "")) for c in answer["tool_calls"] if isinstance(c, dict)
    ]


def _json_text(text: str, response_format: dict[str, Any], messages: list[Any], model: str) -> str:
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        prompt = prompt_text(messages)
        return json.dumps(instance_of(schema, f"{prompt}\n{text}", f"{model}\n{prompt}"))
    return json.dumps({"answer": text})


def shape_answer(
    body: dict[str, Any], answer: Answer, *, model: str, messages: list[Any], fine_tuned: bool
) -> tuple[Answer, bool]:
    """The answer as the request's tools and response format ask; True when a tool call was forced."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        if isinstance(answer, dict) and (not fine_tuned or choice == "none"):
            answer = f"I would call {', '.join(_called_names(answer))}."
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if _called_names(answer) != [name]:
            tool = next(t for t in tools if t["function"]["name"] == name)
            answer = {"tool_calls": [_made_up_call(tool, messages, model)]}
        return answer, True
    elif choice == "required":
        if not isinstance(answer, dict):
            answer = {"tool_calls": [_made_up_call(tools[0], messages, model)]}
        return answer, True
    elif isinstance(answer, dict) and not fine_tuned:  # pragma: no cover - base answers are text
        answer = f"I would call {', '.join(_called_names(answer))}."
    response_format = body.get("response_format")
    if (
        isinstance(answer, str)
        and isinstance(response_format, dict)
        and response_format.get("type") != "text"
    ):
        answer = _json_text(answer, response_format, messages, model)
    return answer, False
