"""finetune_wb: labelled data -> fine-tuned OpenAI-compatible chat model, tracked in W&B, evaluated.

The public API is everything in ``__all__``. Names are resolved lazily (PEP 562) so that
``import finetune_wb`` stays fast and loads none of openai, wandb, datasets or pandas.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports
from finetune_wb._version import __version__ as __version__

# A library logs, it does not print: without this, Python's last-resort handler writes our WARNING records
# to stderr when the application has configured no logging. Applications (and the CLI) add their own handlers.
logging.getLogger("finetune_wb").addHandler(logging.NullHandler())

# public name -> the module that defines it. Keep sorted by name.
_EXPORTS: dict[str, str] = {
    "ArtifactRef": "finetune_wb.tracking.artifacts",
    "AzureAccount": "finetune_wb.jobs.azure_auth",
    "BatchInputError": "finetune_wb.errors",
    "BatchOptions": "finetune_wb.evaluation.batch.settings",
    "ChatExample": "finetune_wb.schema",
    "ConfigError": "finetune_wb.errors",
    "DataError": "finetune_wb.errors",
    "DataQualityError": "finetune_wb.errors",
    "DataValidationError": "finetune_wb.errors",
    "DemoResult": "finetune_wb.demo",
    "Deployment": "finetune_wb.jobs.deployments",
    "DeploymentError": "finetune_wb.jobs.deployments",
    "EmulatorError": "finetune_wb.errors",
    "EvalReport": "finetune_wb.evaluation.report",
    "EvaluationError": "finetune_wb.errors",
    "Evaluator": "finetune_wb.evaluation.evaluators",
    "FineTuneError": "finetune_wb.errors",
    "FineTuneSession": "finetune_wb.session.facade",
    "FineTuneTracker": "finetune_wb.tracking.runs",
    "JobCancelled": "finetune_wb.errors",
    "JobError": "finetune_wb.errors",
    "JobEvent": "finetune_wb.jobs.events",
    "JobFailed": "finetune_wb.errors",
    "JobSpec": "finetune_wb.schema",
    "JobTimeout": "finetune_wb.errors",
    "Message": "finetune_wb.schema",
    "MigrationReport": "finetune_wb.migration.report",
    "ModelShutDownError": "finetune_wb.migration.errors",
    "ModelTarget": "finetune_wb.evaluation.targets",
    "PreferenceExample": "finetune_wb.schema",
    "PreflightError": "finetune_wb.providers.preflight_checks",
    "ProviderProfile": "finetune_wb.providers.profiles",
    "ProviderRefusal": "finetune_wb.providers.checks",
    "RetirementInventory": "finetune_wb.migration.inventory",
    "QualityFinding": "finetune_wb.validation.quality_report",
    "QualityReport": "finetune_wb.validation.quality_report",
    "RetryPolicy": "finetune_wb._retry",
    "RunConfig": "finetune_wb.config.model",
    "RunResult": "finetune_wb.session.config_runner",
    "Score": "finetune_wb.evaluation.evaluators",
    "SessionState": "finetune_wb.session.state",
    "SnapshotResult": "finetune_wb.migration.snapshots",
    "SyncReport": "finetune_wb.tracking.sync",
    "SyncResult": "finetune_wb.tracking.sync",
    "Template": "finetune_wb.data.template",
    "ToolCall": "finetune_wb.schema",
    "TrackedJob": "finetune_wb.tracking.runs",
    "TrackingError": "finetune_wb.errors",
    "UploadError": "finetune_wb.errors",
    "ValidationIssue": "finetune_wb.validation.report",
    "ValidationReport": "finetune_wb.validation.report",
    "aevaluate": "finetune_wb.evaluation.engine",
    "build_examples": "finetune_wb.data.build",
    "cancel_job": "finetune_wb.jobs.operations",
    "check_job_spec": "finetune_wb.providers.checks",
    "check_quality": "finetune_wb.validation.quality.check",
    "classification": "finetune_wb.evaluation.builtin_evaluators",
    "contains": "finetune_wb.evaluation.builtin_evaluators",
    "count_example_tokens": "finetune_wb.validation.tokens",
    "create_job": "finetune_wb.jobs.operations",
    "deploy_model": "finetune_wb.jobs.deployments",
    "encoding_name_for_model": "finetune_wb.validation.tokens",
    "evaluate": "finetune_wb.evaluation.engine",
    "evaluator": "finetune_wb.evaluation.evaluators",
    "exact_match": "finetune_wb.evaluation.builtin_evaluators",
    "get_deployment": "finetune_wb.jobs.deployments",
    "get_job": "finetune_wb.jobs.operations",
    "instruction_from_prompt": "finetune_wb.data.template",
    "job_metrics": "finetune_wb.jobs.result_file",
    "json_fields": "finetune_wb.evaluation.structured_evaluators",
    "json_match": "finetune_wb.evaluation.builtin_evaluators",
    "json_schema": "finetune_wb.evaluation.structured_evaluators",
    "json_valid": "finetune_wb.evaluation.builtin_evaluators",
    "link_input": "finetune_wb.tracking.lineage",
    "list_checkpoints": "finetune_wb.jobs.operations",
    "list_jobs": "finetune_wb.jobs.operations",
    "llm_judge": "finetune_wb.evaluation.builtin_evaluators",
    "load_examples": "finetune_wb.data.jsonl",
    "near_duplicate_groups": "finetune_wb.validation.quality.groups",
    "log_dataset": "finetune_wb.tracking.datasets",
    "migrate": "finetune_wb.migration.report",
    "pause_job": "finetune_wb.jobs.pausing",
    "preference": "finetune_wb.evaluation.preference_evaluators",
    "preflight": "finetune_wb.providers.preflight_checks",
    "profile_for": "finetune_wb.providers.checks",
    "read_jsonl": "finetune_wb.data.jsonl",
    "read_records": "finetune_wb.data.records",
    "regex": "finetune_wb.evaluation.builtin_evaluators",
    "resume_job": "finetune_wb.jobs.pausing",
    "retirements": "finetune_wb.migration.inventory",
    "run_config": "finetune_wb.session.config_runner",
    "run_demo": "finetune_wb.demo",
    "run_emulator": "finetune_wb.emulator.runner",
    "snapshot": "finetune_wb.migration.snapshots",
    "split_examples": "finetune_wb.data.build",
    "start_eval_run": "finetune_wb.tracking.model_artifact",
    "sync_job": "finetune_wb.tracking.sync",
    "sync_jobs": "finetune_wb.tracking.sync",
    "tool_call_match": "finetune_wb.evaluation.tool_evaluators",
    "undeploy": "finetune_wb.jobs.deployments",
    "upload_file": "finetune_wb.jobs.upload",
    "validate_examples": "finetune_wb.validation.validate",
    "validate_file": "finetune_wb.validation.validate",
    "wait_for_job": "finetune_wb.jobs.waiting",
    "write_jsonl": "finetune_wb.data.jsonl",
}

__all__ = sorted([*_EXPORTS, "__version__"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb._retry import RetryPolicy as RetryPolicy
    from finetune_wb.config.model import RunConfig as RunConfig
    from finetune_wb.data.build import build_examples as build_examples, split_examples as split_examples
    from finetune_wb.data.jsonl import (
        load_examples as load_examples,
        read_jsonl as read_jsonl,
        write_jsonl as write_jsonl,
    )
    from finetune_wb.data.records import read_records as read_records
    from finetune_wb.data.template import (
        Template as Template,
        instruction_from_prompt as instruction_from_prompt,
    )
    from finetune_wb.demo import DemoResult as DemoResult, run_demo as run_demo
    from finetune_wb.emulator.runner import run_emulator as run_emulator
    from finetune_wb.errors import (
        BatchInputError as BatchInputError,
        ConfigError as ConfigError,
        DataError as DataError,
        DataQualityError as DataQualityError,
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
    from finetune_wb.evaluation.batch.settings import BatchOptions as BatchOptions
    from finetune_wb.evaluation.builtin_evaluators import (
        classification as classification,
        contains as contains,
        exact_match as exact_match,
        json_match as json_match,
        json_valid as json_valid,
        llm_judge as llm_judge,
        regex as regex,
    )
    from finetune_wb.evaluation.engine import aevaluate as aevaluate, evaluate as evaluate
    from finetune_wb.evaluation.evaluators import (
        Evaluator as Evaluator,
        Score as Score,
        evaluator as evaluator,
    )
    from finetune_wb.evaluation.preference_evaluators import preference as preference
    from finetune_wb.evaluation.report import EvalReport as EvalReport
    from finetune_wb.evaluation.structured_evaluators import (
        json_fields as json_fields,
        json_schema as json_schema,
    )
    from finetune_wb.evaluation.targets import ModelTarget as ModelTarget
    from finetune_wb.evaluation.tool_evaluators import tool_call_match as tool_call_match
    from finetune_wb.jobs.azure_auth import AzureAccount as AzureAccount
    from finetune_wb.jobs.deployments import (
        Deployment as Deployment,
        DeploymentError as DeploymentError,
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
    from finetune_wb.jobs.result_file import job_metrics as job_metrics
    from finetune_wb.jobs.upload import upload_file as upload_file
    from finetune_wb.jobs.waiting import wait_for_job as wait_for_job
    from finetune_wb.migration.errors import ModelShutDownError as ModelShutDownError
    from finetune_wb.migration.inventory import (
        RetirementInventory as RetirementInventory,
        retirements as retirements,
    )
    from finetune_wb.migration.report import MigrationReport as MigrationReport, migrate as migrate
    from finetune_wb.migration.snapshots import SnapshotResult as SnapshotResult, snapshot as snapshot
    from finetune_wb.providers.checks import (
        ProviderRefusal as ProviderRefusal,
        check_job_spec as check_job_spec,
        profile_for as profile_for,
    )
    from finetune_wb.providers.preflight_checks import (
        PreflightError as PreflightError,
        preflight as preflight,
    )
    from finetune_wb.providers.profiles import ProviderProfile as ProviderProfile
    from finetune_wb.schema import (
        ChatExample as ChatExample,
        JobSpec as JobSpec,
        Message as Message,
        PreferenceExample as PreferenceExample,
        ToolCall as ToolCall,
    )
    from finetune_wb.session.config_runner import RunResult as RunResult, run_config as run_config
    from finetune_wb.session.facade import FineTuneSession as FineTuneSession
    from finetune_wb.session.state import SessionState as SessionState
    from finetune_wb.tracking.artifacts import ArtifactRef as ArtifactRef
    from finetune_wb.tracking.datasets import log_dataset as log_dataset
    from finetune_wb.tracking.lineage import link_input as link_input
    from finetune_wb.tracking.model_artifact import start_eval_run as start_eval_run
    from finetune_wb.tracking.runs import FineTuneTracker as FineTuneTracker, TrackedJob as TrackedJob
    from finetune_wb.tracking.sync import (
        SyncReport as SyncReport,
        SyncResult as SyncResult,
        sync_job as sync_job,
        sync_jobs as sync_jobs,
    )
    from finetune_wb.validation.quality.check import check_quality as check_quality
    from finetune_wb.validation.quality.groups import near_duplicate_groups as near_duplicate_groups
    from finetune_wb.validation.quality_report import (
        QualityFinding as QualityFinding,
        QualityReport as QualityReport,
    )
    from finetune_wb.validation.report import (
        ValidationIssue as ValidationIssue,
        ValidationReport as ValidationReport,
    )
    from finetune_wb.validation.tokens import (
        count_example_tokens as count_example_tokens,
        encoding_name_for_model as encoding_name_for_model,
    )
    from finetune_wb.validation.validate import (
        validate_examples as validate_examples,
        validate_file as validate_file,
    )
