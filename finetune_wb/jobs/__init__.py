"""Everything on the provider's side of a fine-tune: upload the file once, create the job once, wait, inspect.

:mod:`.upload` (validated, de-duplicated through :mod:`.registry`; the Uploads API in parts for large files
in :mod:`.multipart`; :mod:`.files` finds what a lost answer left behind), :mod:`.operations` (create, get,
cancel, list, checkpoints), :mod:`.retrieval` (the one retried read of a job), :mod:`.waiting` (poll with
events once each), :mod:`.events` (typed events and their pagination), :mod:`.result_file` (per-step
metrics), :mod:`.deployments` (Azure OpenAI deployments through ARM, with :mod:`.azure_auth` for the
account and its token), :mod:`.pausing` (pause/resume a job). Nothing here knows about W&B: tracking keeps its own record through a :class:`FileIndex`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "AzureAccount": ".azure_auth",
    "AzureAuthError": ".azure_auth",
    "Deployment": ".deployments",
    "DeploymentError": ".deployments",
    "DeploymentFailed": ".deployments",
    "DeploymentNameInUse": ".deployments",
    "FileIndex": ".registry",
    "JobEvent": ".events",
    "cancel_job": ".operations",
    "create_job": ".operations",
    "deploy_model": ".deployments",
    "get_deployment": ".deployments",
    "get_job": ".operations",
    "job_metrics": ".result_file",
    "list_checkpoints": ".operations",
    "list_jobs": ".operations",
    "pause_job": ".pausing",
    "resume_job": ".pausing",
    "undeploy": ".deployments",
    "upload_file": ".upload",
    "wait_for_job": ".waiting",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.jobs.azure_auth import AzureAccount as AzureAccount, AzureAuthError as AzureAuthError
    from finetune_wb.jobs.deployments import (
        Deployment as Deployment,
        DeploymentError as DeploymentError,
        DeploymentFailed as DeploymentFailed,
        DeploymentNameInUse as DeploymentNameInUse,
        deploy_model as deploy_model,
        get_deployment as get_deployment,
        undeploy as undeploy,
    )
    from finetune_wb.jobs.events import JobEvent as JobEvent
    from finetune_wb.jobs.operations import (
        cancel_job as cancel_job,
        create_job as create_job,
        get_job as get_job,
        list_checkpoints as list_checkpoints,
        list_jobs as list_jobs,
    )
    from finetune_wb.jobs.pausing import pause_job as pause_job, resume_job as resume_job
    from finetune_wb.jobs.registry import FileIndex as FileIndex
    from finetune_wb.jobs.result_file import job_metrics as job_metrics
    from finetune_wb.jobs.upload import upload_file as upload_file
    from finetune_wb.jobs.waiting import wait_for_job as wait_for_job
