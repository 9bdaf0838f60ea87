"""One conversion to plain JSON values for everything written to disk, W&B or ``--json`` output."""

from __future__ import annotations

from typing import Any


def to_jsonable(value: Any) -> Any:
    """Pydantic models (ours and openai's) and the dicts/lists holding them -> plain JSON values.

    Models dump with ``mode="json"``; mapping keys become strings; anything else is returned as it is (the
    caller's ``json.dumps(..., default=str)`` decides about the rest).
    """
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
