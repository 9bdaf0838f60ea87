"""Everything on the provider's side of a fine-tune: upload the file once, create the job once, wait, inspect.

:mod:`.upload` (validated, de-duplicated through :mod:`.registry`; the Uploads API in parts for large files
in :mod:`.multipart`; :mod:`.files` finds what a lost answer left behind), :mod:`.operations` (create, get,
cancel, list, checkpoints), :mod:`.retrieval` (the one retried read of a job), :mod:`.waiting` (poll with
events once each), :mod:`.events` (typed events and their pagination), :mod:`.result_file` (per-step
metrics). Nothing here knows about W&B: tracking keeps its own record through a :class:`FileIndex`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "FileIndex": ".registry",
    "JobEvent": ".events",
    "cancel_job": ".operations",
    "create_job": ".operations",
    "get_job": ".operations",
    "job_metrics": ".result_file",
    "list_checkpoints": ".operations",
    "list_jobs": ".operations",
    "upload_file": ".upload",
    "wait_for_job": ".waiting",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.jobs.events import JobEvent as JobEvent
    from finetune_wb.jobs.operations import (
        cancel_job as cancel_job,
        create_job as create_job,
        get_job as get_job,
        list_checkpoints as list_checkpoints,
        list_jobs as list_jobs,
    )
    from finetune_wb.jobs.registry import FileIndex as FileIndex
    from finetune_wb.jobs.result_file import job_metrics as job_metrics
    from finetune_wb.jobs.upload import upload_file as upload_file
    from finetune_wb.jobs.waiting import wait_for_job as wait_for_job
