"""Read labelled records from wherever a user keeps them: lists of dicts, pandas, Hugging Face, files.

One reader for every entry point (the session, ``build_examples`` and ``finetune-wb run``): JSONL, a JSON
array, CSV and TSV (a UTF-8 byte-order mark is accepted), and Hugging Face datasets.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from finetune_wb._paths import PathLike
from finetune_wb.data.jsonl import read_jsonl
from finetune_wb.errors import DataError


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
            if text.lstrip().startswith("["):
                return _json_array(p, text)
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


def _json_array(path: Path, text: str) -> list[dict[str, Any]]:
    """The records of a ``.json`` file holding one array of objects; errors name file:line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"{path}: expected a JSON list of objects; item {bad} is {type(data[bad]).__name__}")
    return list(data)


def load_hf_records(name: str, config: str | None, splits: list[str]) -> list[dict[str, Any]]:
    """The rows of ``splits`` of the Hugging Face dataset ``name`` (configuration ``config``), in order."""
    import datasets

    records: list[dict[str, Any]] = []
    try:
        for split in splits:
            ds = datasets.load_dataset(name, config, split=split)
            records.extend(dict(row) for row in ds)
    except Exception as exc:
        raise DataError(f"cannot load Hugging Face dataset {name!r} ({config}): {exc}") from exc
    return records


def iter_records(
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
