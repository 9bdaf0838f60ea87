"""From raw labelled records to ChatExamples; JSONL read/write; a seeded, stratified train/test split.

Records can be a list of dicts, a pandas DataFrame, a Hugging Face ``Dataset`` or ``DatasetDict``, or a
path to a JSONL / JSON-lines, CSV or TSV file. A :class:`Template` turns each record into a conversation.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from string import Formatter
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from finetune_wb.errors import ConfigError, DataError
from finetune_wb.schema import ChatExample, PreferenceExample

__all__ = [
    "Template",
    "build_examples",
    "instruction_from_prompt",
    "load_examples",
    "read_jsonl",
    "read_records",
    "split_examples",
    "write_jsonl",
]

T = TypeVar("T")
PathLike = str | os.PathLike[str]


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


# ------------------------------------------------------------------------------------------------ records


def read_records(
    path: PathLike, *, quoting: int | None = None, delimiter: str | None = None
) -> list[dict[str, Any]]:
    """Rows of a .jsonl/.json, .csv or .tsv file as dicts.

    CSV/TSV use the csv module's default quoting unless ``quoting`` is given (e.g. ``csv.QUOTE_NONE`` for
    files whose fields start with a literal quote character).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist or is not a file")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        if suffix == ".json":
            text = p.read_text(encoding="utf-8-sig")
            stripped = text.lstrip()
            if stripped.startswith("["):
                data = json.loads(text)
                if not all(isinstance(r, dict) for r in data):
                    raise DataError(f"{p}: expected a JSON list of objects")
                return list(data)
        return [obj for _, obj in read_jsonl(p)]
    if suffix in (".csv", ".tsv", ".tab"):
        sep = delimiter or ("," if suffix == ".csv" else "\t")
        with open(p, encoding="utf-8-sig", newline="") as f:
            if quoting is None:
                reader = csv.DictReader(f, delimiter=sep)
            else:
                reader = csv.DictReader(f, delimiter=sep, quoting=quoting)  # type: ignore[call-overload]
            return [dict(row) for row in reader]
    raise DataError(f"{p}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .tsv")


def _iter_records(
    records: Any, split: str | None, quoting: int | None
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, record) for any supported source, without importing pandas or datasets."""
    if isinstance(records, (str, os.PathLike)):
        for i, rec in enumerate(read_records(records, quoting=quoting)):
            yield f"{records} record {i}", rec
        return
    module = type(records).__module__.split(".")[0]
    if module == "pandas" and hasattr(records, "to_dict"):
        for i, rec in enumerate(records.to_dict(orient="records")):
            yield f"row {i}", rec
        return
    if module == "datasets" and isinstance(records, Mapping):  # DatasetDict: split -> Dataset
        names = [split] if split is not None else list(records)
        for name in names:
            if name not in records:
                raise DataError(f"the DatasetDict has no split {name!r}; it has {list(records)}")
            for i, rec in enumerate(records[name]):
                yield f"{name} row {i}", rec
        return
    if isinstance(records, Mapping):
        raise DataError("records must be a list of dicts (got a single dict); wrap it in a list")
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise DataError(f"record {i} is {type(rec).__name__}, not a dict")
        yield f"record {i}", rec


def build_examples(
    records: Any,
    *,
    template: Template,
    split: str | None = None,
    quoting: int | None = None,
) -> list[ChatExample]:
    """Turn records (list of dicts, DataFrame, Dataset, DatasetDict or a file path) into ChatExamples.

    ``split`` picks one split of a DatasetDict (default: all, in order). ``quoting`` is passed to the csv
    reader for CSV/TSV paths.
    """
    if not isinstance(template, Template):
        raise ConfigError("template must be a finetune_wb.Template")
    return [template.render(rec, where=where) for where, rec in _iter_records(records, split, quoting)]


# ------------------------------------------------------------------------------------------------ split


def _label_of(example: Any) -> Hashable:
    target = getattr(example, "target", None)
    if isinstance(target, str):
        return target
    if isinstance(example, Mapping):
        messages = example.get("messages")
        if isinstance(messages, list):
            for msg in reversed(messages):
                if isinstance(msg, Mapping) and msg.get("role") == "assistant":
                    return json.dumps(msg.get("content"), sort_keys=True, default=str)
    return json.dumps(example, sort_keys=True, default=str) if isinstance(example, Mapping) else repr(example)


def _allocate(sizes: list[int], n_train: int) -> list[int]:
    """Per-group train counts: proportional (largest remainder), at least 1 per group when possible."""
    total = sum(sizes)
    quotas = [n_train * s / total for s in sizes]
    alloc = [min(s, math.floor(q)) for s, q in zip(sizes, quotas, strict=True)]
    if n_train >= len(sizes):
        alloc = [max(a, 1) if s > 0 else 0 for a, s in zip(alloc, sizes, strict=True)]
    while sum(alloc) > n_train:  # the minimum of 1 overshot: take from the most over-served group
        i = max((j for j in range(len(sizes)) if alloc[j] > 1), key=lambda j: (alloc[j] - quotas[j], -j))
        alloc[i] -= 1
    while sum(alloc) < n_train:
        i = max(
            (j for j in range(len(sizes)) if alloc[j] < sizes[j]), key=lambda j: (quotas[j] - alloc[j], -j)
        )
        alloc[i] += 1
    return alloc


def split_examples(
    examples: Sequence[T],
    *,
    n_train: int | None = None,
    train_fraction: float | None = None,
    seed: int = 42,
    stratify: bool = True,
    label: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Seeded shuffle and split into (train, test), by count (``n_train``) or by ``train_fraction``.

    With ``stratify`` (default) each label (the assistant answer, or ``label(example)``) is split in
    proportion, and every label gets at least one training example when ``n_train`` allows it. The result
    depends only on the seed and the examples' order, so it is the same on every machine.
    """
    items = list(examples)
    n = len(items)
    if (n_train is None) == (train_fraction is None):
        raise ConfigError("give exactly one of n_train or train_fraction")
    if train_fraction is not None:
        if not 0 < train_fraction < 1:
            raise ConfigError(f"train_fraction must be between 0 and 1, got {train_fraction}")
        n_train = round(n * train_fraction)
    assert n_train is not None
    if not 0 <= n_train <= n:
        raise ConfigError(f"n_train must be between 0 and the number of examples ({n}), got {n_train}")
    rng = random.Random(seed)
    if not stratify or n == 0:
        order = list(range(n))
        rng.shuffle(order)
        return [items[i] for i in order[:n_train]], [items[i] for i in order[n_train:]]
    key = label or _label_of
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(items):
        groups.setdefault(repr(key(ex)), []).append(i)
    names = sorted(groups)
    for name in names:
        rng.shuffle(groups[name])
    alloc = _allocate([len(groups[name]) for name in names], n_train)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for name, k in zip(names, alloc, strict=True):
        train_idx += groups[name][:k]
        test_idx += groups[name][k:]
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return [items[i] for i in train_idx], [items[i] for i in test_idx]


# ------------------------------------------------------------------------------------------------ JSONL


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
