"""JSONL read and write for examples: the format every provider's fine-tuning API takes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finetune_wb._paths import PathLike
from finetune_wb.errors import DataError
from finetune_wb.schema import ChatExample, PreferenceExample


def write_jsonl(examples: Iterable[Any], path: PathLike) -> Path:
    """Write examples (ChatExample / PreferenceExample / dicts) as one JSON object per line (UTF-8)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        for ex in examples:
            data = ex.to_openai() if hasattr(ex, "to_openai") else ex
            f.write(json.dumps(data, ensure_ascii=False))
            f.write("\n")
    return p


def read_jsonl(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, object) pairs; blank lines are skipped; a UTF-8 BOM is accepted.

    Raises DataError naming file:line for a line that is not a JSON object (use ``validate_file`` to see
    every problem at once).
    """
    p = Path(path)
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise DataError(f"{p}:{line_no}: not a valid UTF-8 JSON line ({exc})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{p}:{line_no}: expected a JSON object, got {type(obj).__name__}")
            yield line_no, obj


def load_examples(path: PathLike) -> list[ChatExample | PreferenceExample]:
    """Read a training file into ChatExamples (or PreferenceExamples for a DPO file).

    Raises DataError with file:line on the first invalid example; run ``finetune-wb validate`` to see all.
    """
    out: list[ChatExample | PreferenceExample] = []
    for line_no, obj in read_jsonl(path):
        model: type[ChatExample] | type[PreferenceExample] = (
            PreferenceExample if "preferred_output" in obj or "input" in obj else ChatExample
        )
        try:
            out.append(model.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise DataError(
                f"{path}:{line_no}: invalid {model.__name__} at {loc or 'top level'}: {first['msg']}."
                f" Run `finetune-wb validate {path}` to list every problem."
            ) from None
    return out
