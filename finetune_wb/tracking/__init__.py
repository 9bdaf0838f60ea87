"""Everything that touches W&B: dataset and model artifacts, lineage, fine-tune and eval runs, metrics, sync.

Lineage::

    dataset artifact (JSONL, sha256) --upload--> OpenAI file --> fine-tuning job --> fine-tune run
        --> model artifact --> eval run (+ the test dataset artifact)

Online, edges are W&B artifact inputs/outputs; offline they are ids and digests in each run's config under
``lineage`` (``wandb.Api``, ``wandb.login`` and ``use_artifact`` are never called offline).

:mod:`.mode` (online/offline/disabled, starting runs), :mod:`.records` (local JSON records),
:mod:`.artifacts` (ArtifactRef and the record of logged artifacts), :mod:`.lineage`, :mod:`.tables`,
:mod:`.dataset_stats`, :mod:`.datasets` (dataset artifacts), :mod:`.results` (a job as its run records it),
:mod:`.model_artifact`, :mod:`.runs` (FineTuneTracker), :mod:`.synced` (which jobs were synced),
:mod:`.sync` (jobs started anywhere -> runs). Importing this package loads none of them (nor wandb).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports
from finetune_wb._secrets import RedactSecrets

# The loggers of this package never carry a key (an exception message can quote anything). Installed here,
# so they are in place whichever tracking module is imported first.
for _name in ("finetune_wb.tracking", "finetune_wb.tracking.sync"):
    logging.getLogger(_name).addFilter(RedactSecrets())

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ArtifactFileIndex": ".artifacts",
    "ArtifactRef": ".artifacts",
    "FineTuneTracker": ".runs",
    "SyncReport": ".sync",
    "SyncResult": ".sync",
    "TrackedJob": ".runs",
    "dataset_statistics": ".dataset_stats",
    "event_step_metrics": ".runs",
    "examples_table": ".tables",
    "find_artifact": ".artifacts",
    "is_offline": ".mode",
    "link_input": ".lineage",
    "log_dataset": ".datasets",
    "log_deployment": ".deployments",
    "log_adapter": ".adapter_artifact",
    "log_model": ".model_artifact",
    "model_ref": ".model_artifact",
    "offline_hint": ".mode",
    "record_file_id": ".artifacts",
    "recorded_artifacts": ".artifacts",
    "start_eval_run": ".model_artifact",
    "sync_job": ".sync",
    "sync_jobs": ".sync",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.tracking.adapter_artifact import log_adapter as log_adapter
    from finetune_wb.tracking.artifacts import (
        ArtifactFileIndex as ArtifactFileIndex,
        ArtifactRef as ArtifactRef,
        find_artifact as find_artifact,
        record_file_id as record_file_id,
        recorded_artifacts as recorded_artifacts,
    )
    from finetune_wb.tracking.dataset_stats import dataset_statistics as dataset_statistics
    from finetune_wb.tracking.datasets import log_dataset as log_dataset
    from finetune_wb.tracking.deployments import log_deployment as log_deployment
    from finetune_wb.tracking.lineage import link_input as link_input
    from finetune_wb.tracking.mode import is_offline as is_offline, offline_hint as offline_hint
    from finetune_wb.tracking.model_artifact import (
        log_model as log_model,
        model_ref as model_ref,
        start_eval_run as start_eval_run,
    )
    from finetune_wb.tracking.runs import (
        FineTuneTracker as FineTuneTracker,
        TrackedJob as TrackedJob,
        event_step_metrics as event_step_metrics,
    )
    from finetune_wb.tracking.sync import (
        SyncReport as SyncReport,
        SyncResult as SyncResult,
        sync_job as sync_job,
        sync_jobs as sync_jobs,
    )
    from finetune_wb.tracking.tables import examples_table as examples_table
