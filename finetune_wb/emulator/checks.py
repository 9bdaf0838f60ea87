"""Validating training files during a job's ``validating_files`` phase with the project's own validator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finetune_wb.model_ids import base_model_of

if TYPE_CHECKING:
    from finetune_wb.emulator.state import Store


@dataclass(frozen=True)
class FileCheck:
    """What a job needs to know about a file: whether it is usable, its first error, sizes."""

    ok: bool
    n_examples: int
    tokens: int
    n_epochs: int | None
    line: int | None = None
    code: str | None = None
    message: str | None = None


def check_file(
    store: Store,
    file_id: str,
    *,
    model: str,
    n_epochs: int | None,
    validation: bool = False,
    method: str | None = None,
) -> FileCheck:
    """Validate a stored file. For a validation file, too few examples is not an error (OpenAI's
    minimum of 10 applies to training files)."""
    key = (file_id, model, n_epochs, validation, method)
    cached = store.validation_cache.get(key)
    if isinstance(cached, FileCheck):
        return cached
    path = store.blob_path(file_id)
    from finetune_wb.errors import FineTuneError
    from finetune_wb.validation.validate import validate_file

    try:
        report = validate_file(path, model=_validator_model(model), n_epochs=n_epochs, method=method)
    except FineTuneError as exc:
        # e.g. the tokenizer cannot load (no network, no TIKTOKEN_CACHE_DIR): fail the job with the reason
        # instead of answering the poll with a 500.
        return FileCheck(
            ok=False, n_examples=0, tokens=0, n_epochs=None, code="validation_unavailable", message=str(exc)
        )
    result = _from_report(report, ignore=("too_few_examples",) if validation else ())
    store.validation_cache[key] = result
    return result


def _validator_model(model: str) -> str:
    return base_model_of(model)


def _from_report(report: Any, *, ignore: tuple[str, ...] = ()) -> FileCheck:
    errors = [i for i in report.issues if i.severity == "error" and i.code not in ignore]
    tokens = getattr(getattr(report, "tokens", None), "total", 0) or 0
    if not errors and report.n_errors <= len([i for i in report.issues if i.code in ignore]):
        return FileCheck(ok=True, n_examples=report.n_examples, tokens=int(tokens), n_epochs=report.n_epochs)
    first = min(errors, key=lambda i: (i.line is None, i.line or 0)) if errors else None
    return FileCheck(
        ok=False,
        n_examples=report.n_examples,
        tokens=int(tokens),
        n_epochs=report.n_epochs,
        line=getattr(first, "line", None),
        code=getattr(first, "code", "invalid_file"),
        message=getattr(first, "message", "the validator rejected the file"),
    )
