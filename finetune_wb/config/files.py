"""What a run configuration points at: the config file itself (TOML, YAML) and its evaluators.

Every error is a :class:`~finetune_wb.errors.ConfigError` that names the file (and the line when the parser
gives one), so ``finetune-wb run`` can print it as it is. The data records a config names are read by the
data stage (:func:`finetune_wb.data.read_records`), the same reader the session uses.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from finetune_wb.errors import ConfigError


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
    """The evaluator a config entry names, as :func:`finetune_wb.evaluation.resolution.evaluator_from_spec`
    resolves it (the one resolution of evaluator names and specs); its errors become :class:`ConfigError`.

    A built-in by name (``exact_match``, ``classification``, ...; a factory, called with ``kwargs`` when
    there are any), a spec as ``finetune-wb eval --evaluator`` takes it (``contains:Yes``), or a custom
    evaluator ``MODULE:FUNCTION`` / ``path/to/file.py:FUNCTION`` (a relative file path is resolved against
    ``base_dir``, the config file's directory).
    """
    from finetune_wb.errors import EvaluationError
    from finetune_wb.evaluation.resolution import evaluator_from_spec

    try:
        return evaluator_from_spec(name, kwargs, base_dir=base_dir)
    except EvaluationError as exc:
        raise ConfigError(str(exc)) from exc
