"""Evaluation examples beyond one prompt and one text answer: preference (DPO) lines and multi-turn turns.

A DPO line (``input``, ``preferred_output``, ``non_preferred_output``) becomes an :class:`EvalExample` whose
messages are ``input.messages`` plus the preferred answer (so the reference is the preferred output and the
prompt is ``input`` with its tools), with the non-preferred answer kept for the ``preference`` evaluator.
With ``turns="all"`` every assistant message of an example becomes an example of its own, holding the
history before it, numbered by ``turn`` (0 for the first assistant message).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationError

from finetune_wb.errors import EvaluationError
from finetune_wb.schema import ChatExample, Message, PreferenceExample

__all__ = [
    "EvalExample",
    "describe_validation_error",
    "example_from_obj",
    "expand_turns",
    "is_preference",
    "looks_like_preference",
]


class EvalExample(ChatExample):
    """A :class:`ChatExample` with where it came from: its assistant ``turn`` (multi-turn evaluation), the
    ``source_index`` of the example it was cut from, and a DPO line's ``non_preferred_output``."""

    turn: int | None = Field(default=None, description="index of the evaluated assistant message (0 = first)")
    source_index: int | None = Field(default=None, description="index of the example this turn was cut from")
    non_preferred_output: list[Message] | None = Field(
        default=None, description="a DPO line's non-preferred answer (the preferred one is the reference)"
    )


def looks_like_preference(obj: Any) -> bool:
    return isinstance(obj, dict) and "input" in obj and "preferred_output" in obj


def is_preference(example: Any) -> bool:
    """True for an example made from a DPO line (it has a non-preferred answer)."""
    return bool(getattr(example, "non_preferred_output", None))


def from_preference(pref: PreferenceExample) -> EvalExample:
    return EvalExample(
        messages=[*pref.input.messages, *pref.preferred_output],
        tools=pref.input.tools,
        parallel_tool_calls=pref.input.parallel_tool_calls,
        non_preferred_output=list(pref.non_preferred_output),
    )


def describe_validation_error(exc: Exception) -> str:
    """The first problem of a pydantic error with where it is (``messages.2.tool_calls.0...: why``)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {message}{more}" if where else f"{message}{more}"
    return str(exc).splitlines()[0]


def example_from_obj(obj: Any) -> ChatExample:
    """A chat example from one parsed line or dict: a chat line as it is, a DPO line converted."""
    if isinstance(obj, PreferenceExample):
        return from_preference(obj)
    if looks_like_preference(obj):
        return from_preference(PreferenceExample.model_validate(obj))
    if isinstance(obj, ChatExample):
        return obj
    return ChatExample.model_validate(obj)


def expand_turns(examples: Sequence[ChatExample]) -> list[ChatExample]:
    """One example per assistant message that has a prompt before it, in order (see the module docstring)."""
    out: list[ChatExample] = []
    for i, ex in enumerate(examples):
        turn = 0
        for j, message in enumerate(ex.messages):
            if message.role != "assistant":
                continue
            if j == 0:
                continue  # nothing to ask before it
            if not any(m.role != "assistant" for m in ex.messages[:j]):
                turn += 1
                continue
            try:
                out.append(
                    EvalExample(
                        messages=list(ex.messages[: j + 1]),
                        tools=ex.tools,
                        parallel_tool_calls=ex.parallel_tool_calls,
                        functions=ex.functions,
                        turn=turn,
                        source_index=i,
                        non_preferred_output=getattr(ex, "non_preferred_output", None),
                    )
                )
            except ValidationError as exc:  # pragma: no cover - a prefix of a valid example is valid
                raise EvaluationError(f"example {i}, turn {turn}: {describe_validation_error(exc)}") from None
            turn += 1
    return out
