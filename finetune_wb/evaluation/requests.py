"""What a request carries besides the prompt: the example's tools and the caller's output constraints.

:func:`request_extras` is the one place that turns an example (its ``tools``, legacy ``functions`` and
``parallel_tool_calls``) and the options (``tool_choice``, ``response_format``) into request-body fields.
The engine merges them into the generation parameters, which are part of the answer cache key, so the same
prompt with other tools is asked again. :func:`check_tools` and :func:`normalise_response_format` reject
bad input before any request is sent.
"""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = [
    "check_tool_choice",
    "check_tools",
    "normalise_response_format",
    "request_extras",
    "request_shaping",
]

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_CHOICE_WORDS = ("none", "auto", "required")


def _check_function(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise EvaluationError(f"{where}: a function must be an object with a name, not {type(spec).__name__}")
    name = spec.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise EvaluationError(
            f"{where}.name: {name!r} is not a function name (1-64 letters, digits, '_' or '-')"
        )
    if "parameters" in spec and not isinstance(spec["parameters"], dict):
        raise EvaluationError(f"{where}.parameters: must be a JSON Schema object, not {spec['parameters']!r}")
    if isinstance(spec.get("parameters"), dict) and _has_jsonschema():
        from finetune_wb.evaluation.json_schemas import check_json_schema

        check_json_schema(spec["parameters"], where=f"{where}.parameters")
    if "description" in spec and not isinstance(spec["description"], str):
        raise EvaluationError(f"{where}.description: must be a string")


_CHECKED_TOOLS: set[str] = set()
"""Tool lists already found well-formed in this process (as canonical JSON): the same tools repeat in
every example, so each distinct list is checked once."""


@functools.lru_cache(maxsize=1)
def _has_jsonschema() -> bool:
    """Tool parameter schemas are checked when the optional ``jsonschema`` is installed."""
    import importlib.util

    return importlib.util.find_spec("jsonschema") is not None


def check_tools(example: Any, where: str) -> None:
    """Raise :class:`EvaluationError` (``where`` names file and line) when the tools are malformed."""
    tools = getattr(example, "tools", None)
    functions = getattr(example, "functions", None)
    if not tools and not functions:
        return
    key = json.dumps([tools, functions], sort_keys=True, default=str)
    if key in _CHECKED_TOOLS:
        return
    for i, tool in enumerate(tools or []):
        at = f"{where}: tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise EvaluationError(
                f'{at}: each tool must be {{"type": "function", "function": {{"name": ..., '
                f'"parameters": {{...}}}}}}, got {str(tool)[:120]}'
            )
        _check_function(tool.get("function"), f"{at}.function")
    for i, function in enumerate(functions or []):
        _check_function(function, f"{where}: functions[{i}]")
    names = [t["function"]["name"] for t in tools or []]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EvaluationError(f"{where}: tools: the function name(s) {dupes} are defined twice")
    if len(_CHECKED_TOOLS) < 10_000:
        _CHECKED_TOOLS.add(key)


def check_tool_choice(tool_choice: Any) -> Any:
    """``tool_choice`` as the API takes it: "none" / "auto" / "required", a function name, or the object."""
    if tool_choice is None:
        return None
    if isinstance(tool_choice, str):
        if tool_choice in _TOOL_CHOICE_WORDS:
            return tool_choice
        if _FUNCTION_NAME.match(tool_choice):
            return {"type": "function", "function": {"name": tool_choice}}
    elif (
        isinstance(tool_choice, dict)
        and tool_choice.get("type") == "function"
        and isinstance((tool_choice.get("function") or {}).get("name"), str)
    ):
        return tool_choice
    raise EvaluationError(
        f"tool_choice {tool_choice!r}: use 'none', 'auto', 'required', a function name, or "
        '{"type": "function", "function": {"name": ...}}'
    )


def normalise_response_format(response_format: Any, *, where: str = "response_format") -> Any:
    """``"json_object"``, ``"text"``, a JSON Schema (dict, JSON text or ``.json`` path) or the API's own
    object -> the API's object; the schema of ``json_schema`` is checked to be a valid JSON Schema."""
    from finetune_wb.evaluation.json_schemas import check_json_schema, load_schema

    if response_format is None:
        return None
    if response_format in ("json_object", "text"):
        return {"type": response_format}
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "text"):
        return dict(response_format)
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise EvaluationError(
                f'{where}: json_schema needs {{"name": ..., "schema": {{...}}}}, got {str(spec)[:120]}'
            )
        check_json_schema(spec.get("schema"), where=f"{where}.json_schema.schema")
        return {"type": "json_schema", "json_schema": dict(spec)}
    schema = load_schema(response_format, where=where)
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}


def request_extras(
    example: ChatExample, *, tool_choice: Any = None, response_format: Any = None
) -> dict[str, Any]:
    """The body fields one example's request adds to the generation parameters (and so to its cache key).

    ``tools``/``functions`` and ``parallel_tool_calls`` come from the example; ``tool_choice`` is sent only
    with tools (the API refuses it without); ``response_format`` goes to every request.
    """
    extras: dict[str, Any] = {}
    tools = getattr(example, "tools", None)
    functions = getattr(example, "functions", None)
    if tools:
        extras["tools"] = tools
        if getattr(example, "parallel_tool_calls", None) is not None:
            extras["parallel_tool_calls"] = example.parallel_tool_calls
        if tool_choice is not None:
            extras["tool_choice"] = tool_choice
    elif functions:
        extras["functions"] = functions
        if isinstance(tool_choice, dict):
            extras["function_call"] = {"name": tool_choice["function"]["name"]}
        elif tool_choice in ("none", "auto"):
            extras["function_call"] = tool_choice
    if response_format is not None:
        extras["response_format"] = response_format
    return extras


def request_shaping(args: Any) -> dict[str, Any]:
    """The ``evaluate`` options of ``finetune-wb eval --tool-choice/--response-format/--turns``, checked
    (an :class:`EvaluationError` before any request when one is bad)."""
    out: dict[str, Any] = {}
    if getattr(args, "tool_choice", None) is not None:
        out["tool_choice"] = check_tool_choice(args.tool_choice)
    if getattr(args, "response_format", None) is not None:
        out["response_format"] = normalise_response_format(args.response_format, where="--response-format")
    if getattr(args, "turns", "last") != "last":
        out["turns"] = args.turns
    return out
