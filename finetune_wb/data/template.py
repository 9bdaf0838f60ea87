"""How one record becomes a conversation: :class:`Template`, and reading an instruction from a prompt file."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from pathlib import Path
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from finetune_wb.errors import DataError
from finetune_wb.schema import ChatExample

#: A part that starts with this is fixed text, used exactly as written after the prefix (no field lookup,
#: no ``{...}`` filling): ``Template(user="literal:Write a short poem.")``.
LITERAL_PREFIX = "literal:"


class Template(BaseModel):
    """How one record becomes a conversation.

    Each part is the name of a record field (``"text"``: the field's value), a format string
    (``"Clause: {text}"``), or fixed text spelled ``"literal:..."``. A system prompt with spaces or
    punctuation (``"Answer Yes or No."``) is also taken as fixed text. Anything else -- a ``user`` or
    ``assistant`` part that names no field and has no ``{placeholder}``, or a system part that is one bare
    word which is not a field -- is a DataError naming the record's fields (it is almost always a misspelt
    field name, which would otherwise become the same text in every example). ``system=None`` leaves the
    system message out.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt part name is an error

    system: str | None = None
    user: str = "{text}"
    assistant: str = "{answer}"

    def render(self, record: Mapping[str, Any], *, where: str = "record") -> ChatExample:
        messages: list[dict[str, Any]] = []
        if self.system is not None:
            messages.append({"role": "system", "content": _fill(self.system, record, where, "system")})
        messages.append({"role": "user", "content": _fill(self.user, record, where, "user")})
        messages.append({"role": "assistant", "content": _fill(self.assistant, record, where, "assistant")})
        try:
            return ChatExample.model_validate({"messages": messages})
        except ValidationError as exc:
            raise DataError(f"{where}: the template gives an invalid example: {exc}") from None

    @staticmethod
    def literal(text: str) -> str:
        """``text`` spelled as a fixed part: ``Template(user=Template.literal("Write a poem."))``."""
        return LITERAL_PREFIX + text


def _fill(template: str, record: Mapping[str, Any], where: str, part: str) -> str:
    if template.startswith(LITERAL_PREFIX):
        return template[len(LITERAL_PREFIX) :]
    if template in record:
        value = record[template]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(f"{where}: field {template!r} (the {part} turn) is empty; drop or fix the record")
        return str(value)
    try:
        fields = [name for _, name, _, _ in Formatter().parse(template) if name is not None]
    except ValueError as exc:  # a lone "{" or "}"
        raise DataError(
            f"{where}: the {part} template {template!r} is not a valid format string ({exc}); write braces as"
            f" {{{{ and }}}}, or spell fixed text as {LITERAL_PREFIX + template!r}"
        ) from None
    if not fields:
        if part == "system" and not template.isidentifier():
            return template  # a system prompt: text with spaces or punctuation is fixed text
        raise DataError(_no_field_message(template, record, where, part))
    if "" in fields or any(f.isdigit() for f in fields):
        raise DataError(
            f"{where}: the {part} template {template!r} has a positional placeholder ({{}} or {{0}}); name"
            f" the field instead ({{text}}); the record has {sorted(record)}"
        )
    missing = [f for f in fields if f.split(".")[0].split("[")[0] not in record]
    if missing:
        raise DataError(
            f"{where}: the {part} template {template!r} needs field(s) {missing}; the record has {sorted(record)}"
        )
    try:
        return template.format_map(record)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise DataError(f"{where}: cannot fill the {part} template {template!r}: {exc}") from None


def _no_field_message(template: str, record: Mapping[str, Any], where: str, part: str) -> str:
    names = sorted(str(k) for k in record)
    close = difflib.get_close_matches(template, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    example = close[0] if close else names[0] if names else "text"
    fixed = f"for fixed text, {LITERAL_PREFIX + template!r}"
    if part == "system":
        fixed += (
            " (a system prompt with spaces or punctuation, such as 'Answer Yes or No.', is fixed text too)"
        )
    return (
        f"{where}: the {part} part {template!r} names no field of the record and has no {{placeholder}}, so"
        f" every example would get the same text; the record has fields {names}. {hint}Give a field name"
        f" ({example!r}), a format string ('... {{{example}}}'), or, {fixed}"
    )


def instruction_from_prompt(prompt: str | os.PathLike[str]) -> str:
    """The task instruction of a LegalBench-style ``base_prompt.txt``: its first paragraph.

    Accepts a path to the file (``Path`` or ``str``) or the prompt text itself.
    """
    text = Path(prompt).read_text(encoding="utf-8") if _is_file(prompt) else str(prompt)
    first = text.strip().split("\n\n", 1)[0].strip()
    if not first:
        raise DataError("the prompt is empty; cannot take an instruction from it")
    return first


def _is_file(candidate: str | os.PathLike[str]) -> bool:
    if isinstance(candidate, str) and ("\n" in candidate or len(candidate) > 4096):
        return False
    try:
        return Path(candidate).is_file()
    except (OSError, ValueError):  # a name too long for the OS, or with a NUL byte: text, not a path
        return False
