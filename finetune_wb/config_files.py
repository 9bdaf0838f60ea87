"""Reading what a run configuration points at: the config file itself (TOML, YAML) and its data records.

Every error is a :class:`~finetune_wb.errors.ConfigError` that names the file (and the line when the parser
gives one), so ``finetune-wb run`` can print it as it is.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from finetune_wb.errors import ConfigError


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records from a JSONL (one object per line), CSV or TSV file (header row = field names)."""
    if not path.is_file():
        raise ConfigError(f"{path}: data file not found")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        records: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise ConfigError(f"{path}:{lineno}: expected a JSON object per line")
                records.append(obj)
        return records
    if suffix in {".csv", ".tsv"}:
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    raise ConfigError(f"{path}: unsupported data format {suffix!r}; use .jsonl, .csv or .tsv")


def load_hf(name: str, config: str | None, splits: list[str]) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise ConfigError("hf_dataset needs the 'datasets' package") from exc
    records: list[dict[str, Any]] = []
    try:
        for split in splits:
            ds = datasets.load_dataset(name, config, split=split)
            records.extend(dict(row) for row in ds)
    except Exception as exc:
        raise ConfigError(
            f"cannot load Hugging Face dataset {name!r} ({config}): {exc}; without access to the hub, "
            "use path = a local JSONL/CSV/TSV copy instead of hf_dataset"
        ) from exc
    return records


def parse_toml(text: str, path: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def parse_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError(f"{path}: YAML configs need PyYAML: pip install 'finetune-wb[yaml]'") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML ({problem})") from exc
