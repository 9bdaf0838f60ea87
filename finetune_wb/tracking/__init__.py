"""Everything that touches W&B: dataset and model artifacts, lineage, fine-tune and eval runs, metrics.

Lineage::

    dataset artifact (JSONL, sha256) --upload--> OpenAI file --> fine-tuning job --> fine-tune run
        --> model artifact --> eval run (+ the test dataset artifact)

Online, edges are W&B artifact inputs/outputs; offline they are ids and digests in each run's config under
``lineage`` (``wandb.Api``, ``wandb.login`` and ``use_artifact`` are never called offline).
"""

from __future__ import annotations

from finetune_wb._secrets import scrub
from finetune_wb.tracking.datasets import (
    ArtifactRef,
    dataset_statistics,
    find_artifact,
    link_input,
    log_dataset,
    record_file_id,
    recorded_artifacts,
)
from finetune_wb.tracking.mode import is_offline, offline_hint
from finetune_wb.tracking.model_artifact import log_model, model_ref, start_eval_run
from finetune_wb.tracking.runs import FineTuneTracker, TrackedJob, event_step_metrics
from finetune_wb.tracking.tables import examples_table

__all__ = [
    "ArtifactRef",
    "FineTuneTracker",
    "TrackedJob",
    "dataset_statistics",
    "event_step_metrics",
    "examples_table",
    "find_artifact",
    "is_offline",
    "link_input",
    "log_dataset",
    "log_model",
    "model_ref",
    "offline_hint",
    "record_file_id",
    "recorded_artifacts",
    "scrub",
    "start_eval_run",
]
