"""Prompt files in, golden sets out: reading chat JSONL by line, and the golden file with its sidecar.

A prompts file is chat JSONL (``{"messages": [...]}`` per line) with or without a final assistant message:
a test set (the assistant message is the reference answer) or prompts exported from production logs. Every
bad line is reported with its line number, as ``finetune-wb validate`` does.

A golden set is two files written atomically, the sidecar first: ``GOLDEN.jsonl``, a plain chat JSONL whose
last assistant message is the fine-tune's answer (so ``finetune-wb eval`` and ``validate`` read it as it is),
and ``GOLDEN.meta.json`` beside it: the model, the prompts file and its SHA-256, and ``references``, the
original assistant answer of each line (null where the prompt had none). The golden file exists only once
every prompt was answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_wb.migration.errors import MigrationInputError

MAX_REPORTED = 20
"""Bad lines listed in one error message (the count says how many there are in all)."""


@dataclass
class PromptRow:
    """One prompt: the messages to send, its reference answer (if any) and where it came from."""

    messages: list[dict[str, Any]]
    reference: str | None
    line: int


def _bad_lines_error(path: Path, problems: list[tuple[int, str]], what: str) -> MigrationInputError:
    shown = "\n".join(f"  {path}:{line}: {msg}" for line, msg in problems[:MAX_REPORTED])
    more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    return MigrationInputError(
        f"{path}: {len(problems)} bad line(s); {what}:\n{shown}{more}\nFix these lines (or remove them) and "
        "run again; nothing was sent"
    )


def _parse_line(text: str, *, need_answer: bool) -> tuple[list[dict[str, Any]], str | None]:
    """(prompt messages, last assistant answer or None) of one line; raises ValueError saying what is wrong."""
    from pydantic import ValidationError

    from finetune_wb.schema import ChatExample

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list) or not data["messages"]:
        raise ValueError('expected an object {"messages": [...]} with at least one message')
    messages = data["messages"]
    has_answer = isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant"
    if need_answer and not has_answer:
        raise ValueError("no answer: the last message is not an assistant message (is this a golden file?)")
    checked = (
        dict(data) if has_answer else {**data, "messages": [*messages, {"role": "assistant", "content": "-"}]}
    )
    try:
        example = ChatExample.model_validate(checked)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None
    prompt = example.prompt_messages()
    if not any(m.get("role") == "user" for m in prompt):
        raise ValueError("nothing to ask: no user message before the answer")
    return prompt, (example.target if has_answer else None)


def read_prompts(path: str | Path) -> list[PromptRow]:
    """The prompts of a chat JSONL file; every bad line is reported at once (file:line: what is wrong)."""
    return _read(Path(path), need_answer=False, what='each line needs a chat prompt {"messages": [...]}')


def _read(path: Path, *, need_answer: bool, what: str) -> list[PromptRow]:
    if not path.is_file():
        raise MigrationInputError(f"{path} does not exist (or is not a file); pass a chat JSONL file")
    rows: list[PromptRow] = []
    problems: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                messages, answer = _parse_line(line, need_answer=need_answer)
            except ValueError as exc:
                problems.append((line_no, str(exc)))
                continue
            rows.append(PromptRow(messages, answer, line_no))
    if problems:
        raise _bad_lines_error(path, problems, what)
    if not rows:
        raise MigrationInputError(f"{path} holds no prompts; each line needs a chat prompt")
    return rows


def meta_path(golden: str | Path) -> Path:
    """The sidecar of a golden file: ``GOLDEN.meta.json`` beside ``GOLDEN.jsonl``."""
    p = Path(golden)
    return p.with_name(p.stem + ".meta.json") if p.suffix == ".jsonl" else p.with_name(p.name + ".meta.json")


@dataclass
class GoldenRow:
    """One golden prompt: what was asked, what the fine-tune answered, and the reference (if any)."""

    messages: list[dict[str, Any]]
    answer: str
    reference: str | None
    line: int


@dataclass
class GoldenSet:
    path: Path
    rows: list[GoldenRow]
    meta: dict[str, Any]

    @property
    def model(self) -> str | None:
        value = self.meta.get("model")
        return str(value) if value else None


def read_golden(path: str | Path) -> GoldenSet:
    """A golden file (and its sidecar, when there): every line must end with the fine-tune's answer."""
    p = Path(path)
    rows = _read(
        p, need_answer=True, what="a golden set holds the fine-tune's answer as each line's last message"
    )
    meta: dict[str, Any] = {}
    side = meta_path(p)
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise MigrationInputError(
                f"{side}: not JSON ({exc}); delete it to use {p} without references"
            ) from None
    refs = meta.get("references")
    if not isinstance(refs, list) or len(refs) != len(rows):
        refs = [None] * len(rows)
    golden = [
        GoldenRow(r.messages, r.reference or "", None if ref is None else str(ref), r.line)
        for r, ref in zip(rows, refs, strict=True)
    ]
    return GoldenSet(p, golden, meta)


def golden_lines(rows: list[PromptRow], answers: list[str]) -> bytes:
    """The golden JSONL: each prompt followed by the fine-tune's answer."""
    out = [
        json.dumps({"messages": [*r.messages, {"role": "assistant", "content": a}]}, ensure_ascii=False)
        for r, a in zip(rows, answers, strict=True)
    ]
    return ("\n".join(out) + "\n").encode("utf-8")


def write_golden(path: Path, data: bytes, meta: dict[str, Any]) -> None:
    """The sidecar, then the golden file, each atomically: a golden file is never half written."""
    from finetune_wb._paths import atomic_write_bytes, atomic_write_text

    atomic_write_text(meta_path(path), json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_bytes(path, data)
