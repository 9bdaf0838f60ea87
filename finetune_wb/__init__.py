"""finetune_wb: labelled data -> fine-tuned OpenAI-compatible chat model, tracked in W&B, evaluated.

The public API is everything in ``__all__``. Names are resolved lazily (PEP 562) so that
``import finetune_wb`` stays fast and loads none of openai, wandb, datasets or pandas.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

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


if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb._retry import RetryPolicy as RetryPolicy
    from finetune_wb.config import RunConfig as RunConfig, RunResult as RunResult, run_config as run_config
    from finetune_wb.data import (
        Template as Template,
        build_examples as build_examples,
        instruction_from_prompt as instruction_from_prompt,
        load_examples as load_examples,
        read_jsonl as read_jsonl,
        read_records as read_records,
        split_examples as split_examples,
        write_jsonl as write_jsonl,
    )
    from finetune_wb.demo import DemoResult as DemoResult, run_demo as run_demo
    from finetune_wb.emulator import run_emulator as run_emulator
    from finetune_wb.errors import (
        ConfigError as ConfigError,
        DataError as DataError,
        DataValidationError as DataValidationError,
        EmulatorError as EmulatorError,
        EvaluationError as EvaluationError,
        FineTuneError as FineTuneError,
        JobCancelled as JobCancelled,
        JobError as JobError,
        JobFailed as JobFailed,
        JobTimeout as JobTimeout,
        TrackingError as TrackingError,
        UploadError as UploadError,
    )
    from finetune_wb.evaluation import (
        EvalReport as EvalReport,
        Evaluator as Evaluator,
        ModelTarget as ModelTarget,
        Score as Score,
        aevaluate as aevaluate,
        classification as classification,
        contains as contains,
        evaluate as evaluate,
        evaluator as evaluator,
        exact_match as exact_match,
        json_match as json_match,
        json_valid as json_valid,
        llm_judge as llm_judge,
        regex as regex,
    )
    from finetune_wb.jobs import (
        JobEvent as JobEvent,
        cancel_job as cancel_job,
        create_job as create_job,
        get_job as get_job,
        job_metrics as job_metrics,
        list_checkpoints as list_checkpoints,
        list_jobs as list_jobs,
        wait_for_job as wait_for_job,
    )
    from finetune_wb.report import ValidationIssue as ValidationIssue, ValidationReport as ValidationReport
    from finetune_wb.schema import (
        ChatExample as ChatExample,
        JobSpec as JobSpec,
        Message as Message,
        PreferenceExample as PreferenceExample,
        ToolCall as ToolCall,
    )
    from finetune_wb.session import FineTuneSession as FineTuneSession, SessionState as SessionState
    from finetune_wb.sync import (
        SyncReport as SyncReport,
        SyncResult as SyncResult,
        sync_job as sync_job,
        sync_jobs as sync_jobs,
    )
    from finetune_wb.tokens import (
        count_example_tokens as count_example_tokens,
        encoding_name_for_model as encoding_name_for_model,
    )
    from finetune_wb.tracking import (
        ArtifactRef as ArtifactRef,
        FineTuneTracker as FineTuneTracker,
        TrackedJob as TrackedJob,
        link_input as link_input,
        log_dataset as log_dataset,
        start_eval_run as start_eval_run,
    )
    from finetune_wb.upload import upload_file as upload_file
    from finetune_wb.validate import validate_examples as validate_examples, validate_file as validate_file
