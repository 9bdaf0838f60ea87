"""Every exception finetune_wb raises on purpose derives from :class:`FineTuneError`.

The hierarchy::

    FineTuneError
    ├── ConfigError                 a spec, config file or argument is invalid
    ├── DataError                   records or a file cannot be turned into examples
    │   └── DataValidationError     the validator found errors (carries ``.report``)
    │       └── DataQualityError    the data-quality check found errors (leakage, secrets...)
    ├── UploadError                 a file could not be uploaded or processed
    ├── JobError                    a fine-tuning job went wrong (carries ``.job_id``)
    │   ├── JobFailed               the job ended in ``failed`` (``.code``, ``.message``)
    │   ├── JobCancelled            the job ended in ``cancelled``
    │   └── JobTimeout              we stopped waiting; the job keeps running
    ├── TrackingError               W&B could not record something
    ├── EvaluationError             an evaluation could not run
    │   ├── EvalCacheError          the answer cache file is unreadable (corrupt) or stays locked
    │   └── BatchInputError         batch mode: a request the Batch API would refuse (found before upload)
    └── EmulatorError               the local emulator could not start or was misused

Messages say what went wrong, where (file and line, job id) and what to do next.
"""

from __future__ import annotations

from typing import Any


class FineTuneError(Exception):
    """Root of every error raised by finetune_wb."""


class ConfigError(FineTuneError, ValueError):
    """A spec, configuration file or argument is invalid."""


class DataError(FineTuneError, ValueError):
    """Records or a file cannot be turned into examples."""


class DataValidationError(DataError):
    """The validator found errors; ``report`` holds every issue by line."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class DataQualityError(DataValidationError):
    """The data-quality check found errors (leaked test rows, secrets...) that the caller did not accept;
    ``report`` is the :class:`~finetune_wb.validation.quality.QualityReport`."""


class UploadError(FineTuneError):
    """A file could not be uploaded, or the server could not process it."""

    def __init__(self, message: str, file_id: str | None = None) -> None:
        super().__init__(message)
        self.file_id = file_id


class JobError(FineTuneError):
    """A fine-tuning job went wrong."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobFailed(JobError):
    """The job ended with status ``failed``; ``code`` and ``error_message`` come from the job's error."""

    def __init__(
        self,
        message: str,
        job_id: str | None = None,
        code: str | None = None,
        error_message: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, job_id)
        self.code = code
        self.error_message = error_message
        self.param = param


class JobCancelled(JobError):
    """The job ended with status ``cancelled``."""


class JobTimeout(JobError):
    """We stopped waiting for the job; it keeps running on the server and can be re-attached to."""


class TrackingError(FineTuneError):
    """Weights & Biases could not record something."""


class EvaluationError(FineTuneError):
    """An evaluation could not run (bad examples, unknown evaluator, ...)."""


class EvalCacheError(EvaluationError):
    """The evaluation's answer cache cannot be used: not a readable SQLite file, or locked for too long."""


class BatchInputError(EvaluationError):
    """Batch mode: a request the Batch API would refuse (a line over the size limit, an unknown model),
    found before anything was uploaded."""


class EmulatorError(FineTuneError):
    """The local emulator could not start, or was used in a way it does not support."""
