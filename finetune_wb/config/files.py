"""What a run configuration points at: the config file itself (TOML, YAML), its data records, its evaluators.

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


def resolve_evaluator(name: str, kwargs: dict[str, Any] | None = None, *, base_dir: str | Path = ".") -> Any:
    """The evaluator ``name`` stands for.

    A built-in by name (``exact_match``, ``classification``, ...); factories such as ``classification`` are
    called with ``kwargs``. Any other text is an evaluator spec as ``finetune-wb eval --evaluator`` takes it:
    ``contains:Yes``, or a custom evaluator ``MODULE:FUNCTION`` / ``path/to/file.py:FUNCTION`` (a relative
    file path is resolved against ``base_dir``, the config file's directory).
    """
    from finetune_wb import evaluation
    from finetune_wb.errors import EvaluationError

    builtins = ("exact_match", "contains", "regex", "json_valid", "json_match", "classification", "llm_judge")
    if name in builtins and hasattr(evaluation, name):
        obj = getattr(evaluation, name)
        if kwargs:
            try:
                return obj(**kwargs)
            except TypeError as exc:
                raise ConfigError(f"evaluator {name!r} does not accept {sorted(kwargs)}: {exc}") from exc
        return obj
    if ":" not in name:
        raise ConfigError(
            f"unknown evaluator {name!r}; built-ins are: {', '.join(builtins)}; a custom one is named "
            "MODULE:FUNCTION or path/to/file.py:FUNCTION"
        )
    if kwargs:
        raise ConfigError(
            f"evaluator {name!r}: arguments go in the spec itself, not as extra keys {sorted(kwargs)}"
        )
    target, _, attr = name.rpartition(":")
    if target.endswith(".py") and not Path(target).expanduser().is_absolute():
        name = f"{Path(base_dir) / target}:{attr}"
    from finetune_wb.evaluation.specs import parse_evaluator_spec

    try:
        return parse_evaluator_spec(name)
    except EvaluationError as exc:
        raise ConfigError(str(exc)) from exc
