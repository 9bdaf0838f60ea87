"""A model the server refuses (404 not found, 401/403 no access) is asked once: its message and how to find it.

The refusal is not transient, so the engine stops asking that model after the first answer and marks its
other rows with the same message; :func:`refused_models` reads them back from report rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.transport import describe_error

if TYPE_CHECKING:  # pragma: no cover
    pass


REFUSED_STATUS = frozenset({401, 403, 404})


REFUSED_PREFIX = "not asked: model "


def refusal_message(model: str, base_url: str, exc: BaseException) -> str:
    """One message for a refused model: which, where, what the server said and what to do."""
    from finetune_wb._retry import status_code_of

    status = status_code_of(exc)
    what = "was not found" if status == 404 else "may not be used with this API key"
    said = describe_error(exc)[:400]
    return f"model {model!r} {what} at {base_url or 'the server'} ({said}){REFUSED_TAIL}"


REFUSED_TAIL = (
    "; its other rows were not sent. Check the model id (a fine-tune's id is in `finetune-wb status "
    "JOB_ID`, the server's models in its /v1/models) and the API key, then run again"
)


def refused_models(rows: Any) -> dict[str, str]:
    """``{model: message}`` for the models a server refused, from report rows (``model`` and ``error``)."""
    out: dict[str, str] = {}
    for row in rows:
        error = getattr(row, "error", None)
        if isinstance(error, str) and error.endswith(REFUSED_TAIL):
            out.setdefault(str(row.model), error.removeprefix("not asked: "))
    return out
