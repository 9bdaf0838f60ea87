"""JSON Schemas in evaluations: checked before any request, and answers validated against them.

``jsonschema`` is an optional dependency (``pip install 'finetune-wb[structured]'``); without it, any use of
a schema says so and what to install.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune_wb.errors import EvaluationError

__all__ = ["check_json_schema", "load_schema", "validator_for"]


def _jsonschema(where: str) -> Any:
    try:
        import jsonschema
    except ImportError:
        raise EvaluationError(
            f"{where}: checking JSON Schemas needs the jsonschema package; install it with "
            "`pip install 'finetune-wb[structured]'` (or `pip install jsonschema`)"
        ) from None
    return jsonschema


def load_schema(schema: Any, *, where: str) -> dict[str, Any]:
    """A schema given as a dict, a JSON text, or the path of a ``.json`` file -> the schema dict (checked)."""
    origin = where
    if isinstance(schema, Path) or (isinstance(schema, str) and not schema.lstrip().startswith("{")):
        path = Path(str(schema)).expanduser()
        if not path.is_file():
            raise EvaluationError(
                f"{where}: schema file {path} does not exist (give a JSON object or a .json path)"
            )
        origin = str(path)
        text = path.read_text(encoding="utf-8")
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise EvaluationError(f"{path}:{getattr(exc, 'lineno', 1)}: not JSON ({exc})") from None
    elif isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise EvaluationError(f"{where}: the schema is not JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise EvaluationError(f"{origin}: a JSON Schema must be an object, not {type(schema).__name__}")
    check_json_schema(schema, where=origin)
    return schema


def check_json_schema(schema: Any, *, where: str) -> None:
    """Raise :class:`EvaluationError` naming ``where`` and the schema path when ``schema`` is not valid."""
    if not isinstance(schema, dict):
        raise EvaluationError(f"{where}: a JSON Schema must be an object, not {type(schema).__name__}")
    jsonschema = _jsonschema(where)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise EvaluationError(
            f"{where}: not a valid JSON Schema at {at}: {exc.message}; fix the schema before evaluating"
        ) from None


def validator_for(schema: dict[str, Any], *, where: str) -> Any:
    """A validator object for a checked schema (``iter_errors(instance)``)."""
    jsonschema = _jsonschema(where)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)
