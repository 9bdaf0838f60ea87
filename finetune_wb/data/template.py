"""How one record becomes a conversation: :class:`Template`, and reading an instruction from a prompt file."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from finetune_wb.errors import DataError
from finetune_wb.schema import ChatExample


class Template(BaseModel):
    """How one record becomes a conversation.

    Each part is either the name of a record field (``"text"``: the field's value) or a format string
    (``"Clause: {text}"``); a string that is neither a field name nor has ``{...}`` is used literally,
    which is what a system prompt usually is. ``system=None`` leaves the system message out.
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


def _fill(template: str, record: Mapping[str, Any], where: str, part: str) -> str:
    if template in record:
        value = record[template]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(f"{where}: field {template!r} (the {part} turn) is empty; drop or fix the record")
        return str(value)
    fields = [name for _, name, _, _ in Formatter().parse(template) if name]
    if not fields:
        return template
    missing = [f for f in fields if f.split(".")[0].split("[")[0] not in record]
    if missing:
        raise DataError(
            f"{where}: the {part} template {template!r} needs field(s) {missing}; the record has {sorted(record)}"
        )
    try:
        return template.format_map(record)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise DataError(f"{where}: cannot fill the {part} template {template!r}: {exc}") from None


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
