"""The errors of the migration stage: bad input (exit 2 on the CLI) and failed operations (exit 1)."""

from __future__ import annotations

from finetune_wb.errors import FineTuneError


class MigrationError(FineTuneError):
    """A migration step failed (the CLI exits 1)."""


class MigrationInputError(MigrationError, ValueError):
    """An input that cannot be used: a prompts file with bad lines, a golden file without answers, a
    candidate spec that does not parse, a missing training file (the CLI exits 2)."""


class ModelShutDownError(MigrationError):
    """The model has been shut down by its provider: it answers no request any more."""

    def __init__(self, message: str, *, model: str, shutdown_date: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.shutdown_date = shutdown_date


class ModelNotFoundError(MigrationError):
    """The server does not know the model, or this key may not use it."""

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model
