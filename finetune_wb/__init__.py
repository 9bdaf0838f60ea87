"""finetune_wb: labelled data -> fine-tuned OpenAI-compatible chat model, tracked in W&B, evaluated.

The public API is everything in ``__all__``. Names are resolved lazily (PEP 562) so that
``import finetune_wb`` stays fast and loads none of openai, wandb, datasets or pandas.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

# A library logs, it does not print: without this, Python's last-resort handler writes our WARNING records
# to stderr when the application has configured no logging. Applications (and the CLI) add their own handlers.
logging.getLogger("finetune_wb").addHandler(logging.NullHandler())

# public name -> submodule that defines it. Keep sorted by name.
_EXPORTS: dict[str, str] = {
    "ArtifactRef": "tracking",
    "ChatExample": "schema",
    "ConfigError": "errors",
    "DataError": "errors",
    "DataValidationError": "errors",
    "DemoResult": "demo",
    "EmulatorError": "errors",
    "EvalReport": "evaluation",
    "EvaluationError": "errors",
    "Evaluator": "evaluation",
    "FineTuneError": "errors",
    "FineTuneSession": "session",
    "FineTuneTracker": "tracking",
    "JobCancelled": "errors",
    "JobError": "errors",
    "JobEvent": "jobs",
    "JobFailed": "errors",
    "JobSpec": "schema",
    "JobTimeout": "errors",
    "Message": "schema",
    "ModelTarget": "evaluation",
    "PreferenceExample": "schema",
    "RetryPolicy": "_retry",
    "RunConfig": "config",
    "RunResult": "config",
    "Score": "evaluation",
    "SessionState": "session",
    "SyncReport": "sync",
    "SyncResult": "sync",
    "Template": "data",
    "ToolCall": "schema",
    "TrackedJob": "tracking",
    "TrackingError": "errors",
    "UploadError": "errors",
    "ValidationIssue": "report",
    "ValidationReport": "report",
    "aevaluate": "evaluation",
    "build_examples": "data",
    "cancel_job": "jobs",
    "classification": "evaluation",
    "contains": "evaluation",
    "count_example_tokens": "tokens",
    "create_job": "jobs",
    "encoding_name_for_model": "tokens",
    "evaluate": "evaluation",
    "evaluator": "evaluation",
    "exact_match": "evaluation",
    "get_job": "jobs",
    "instruction_from_prompt": "data",
    "job_metrics": "jobs",
    "json_match": "evaluation",
    "json_valid": "evaluation",
    "link_input": "tracking",
    "list_checkpoints": "jobs",
    "list_jobs": "jobs",
    "llm_judge": "evaluation",
    "load_examples": "data",
    "log_dataset": "tracking",
    "read_jsonl": "data",
    "read_records": "data",
    "regex": "evaluation",
    "run_config": "config",
    "run_demo": "demo",
    "run_emulator": "emulator",
    "split_examples": "data",
    "start_eval_run": "tracking",
    "sync_job": "sync",
    "sync_jobs": "sync",
    "upload_file": "upload",
    "validate_examples": "validate",
    "validate_file": "validate",
    "wait_for_job": "jobs",
    "write_jsonl": "data",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'finetune_wb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"finetune_wb.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
