"""Creating a fine-tuning job: checking the request's parameters and building the job object."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from finetune_wb.emulator import azure
from finetune_wb.emulator.lifecycle import add_event
from finetune_wb.emulator.state import FINE_TUNABLE_MODELS, ORG_ID, ORG_SLUG, ApiError, Store, new_id
from finetune_wb.model_ids import base_model_of

_HP_KEYS = {
    "supervised": ("n_epochs", "batch_size", "learning_rate_multiplier"),
    "dpo": ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
}


def _object(value: Any, param: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (or absent: {}), else a 400 naming ``param``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for '{param}': expected an object, got {value!r}.", param=param)
    return value


def _hp_of(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = _object(params.get("method"), "method")
    mtype = method.get("type") or "supervised"
    if mtype not in ("supervised", "dpo", "reinforcement"):
        raise ApiError(400, f"Invalid method type {mtype!r}; use 'supervised' or 'dpo'.", param="method.type")
    if mtype == "reinforcement":
        raise ApiError(400, "The emulator does not run reinforcement fine-tuning.", param="method.type")
    settings = _object(method.get(mtype), f"method.{mtype}")
    hp_param = f"method.{mtype}.hyperparameters"
    raw = _object(settings.get("hyperparameters"), hp_param)
    if not raw:
        hp_param = "hyperparameters"
        raw = _object(params.get("hyperparameters"), hp_param)
    unknown = sorted(set(raw) - set(_HP_KEYS[mtype]))
    if unknown:
        raise ApiError(
            400,
            f"Unknown hyperparameter {unknown[0]!r} for a {mtype} job; use {', '.join(_HP_KEYS[mtype])}.",
            param=f"{hp_param}.{unknown[0]}",
        )
    hp = dict(raw)
    for key in ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"):
        hp.setdefault(key, "auto")
    if mtype != "dpo":
        hp.pop("beta", None)
    _check_number(hp, "n_epochs", integer=True, low=1, high=50)
    _check_number(hp, "batch_size", integer=True, low=1, high=256)
    _check_number(hp, "learning_rate_multiplier", integer=False, low=1e-6, high=100.0)
    if "beta" in hp:
        _check_number(hp, "beta", integer=False, low=1e-6, high=2.0)
    return mtype, hp


def _check_number(hp: dict[str, Any], key: str, *, integer: bool, low: float, high: float) -> None:
    value: Any = hp[key]
    if value == "auto":
        return
    number = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not number or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ApiError(
            400,
            f"Invalid {key} {value!r}: use 'auto' or {kind} between {low:g} and {high:g}.",
            param=f"hyperparameters.{key}",
        )


def _file_param(store: Store, file_id: Any, param: str) -> str:
    if not isinstance(file_id, str) or not file_id:
        raise ApiError(
            400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    obj = store.files.get(file_id)
    if obj is None:
        raise ApiError(
            400,
            f"Invalid file id {file_id!r} for {param}: no such file. Upload it with "
            "purpose 'fine-tune' first.",
            param=param,
            code="invalid_file_id",
        )
    if obj["purpose"] != "fine-tune":
        raise ApiError(
            400,
            f"File {file_id} has purpose {obj['purpose']!r}; {param} must be a file uploaded "
            "with purpose 'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    return file_id


def _check_integrations(value: Any) -> None:
    """Only W&B integrations exist: ``[{"type": "wandb", "wandb": {"project": ..., ...}}]``."""
    if not isinstance(value, list):
        raise ApiError(400, "Invalid 'integrations': expected a list.", param="integrations")
    for i, item in enumerate(value):
        where = f"integrations[{i}]"
        if not isinstance(item, dict) or item.get("type") != "wandb":
            raise ApiError(400, f"Invalid {where}: only {{'type': 'wandb', ...}} is supported.", param=where)
        wandb = item.get("wandb")
        if not isinstance(wandb, dict) or not isinstance(wandb.get("project"), str) or not wandb["project"]:
            raise ApiError(
                400, f"Invalid {where}.wandb: an object with a non-empty 'project' is required.", param=where
            )


def create_job(
    store: Store,
    params: dict[str, Any],
    *,
    now: float,
    pace: float,
    models: Sequence[str] = FINE_TUNABLE_MODELS,
    external: bool = False,
) -> dict[str, Any]:
    """A new job (``models``: the base models it may name; ``external``: a Trainer of its own runs it)."""
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(
            400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    with store.lock:
        if model not in models and model not in store.fine_tuned_models():
            raise ApiError(
                400,
                f"Model {model!r} is not available for fine-tuning. Fine-tunable models: "
                f"{', '.join(models)}.",
                param="model",
                code="model_not_available",
            )
        training = _file_param(store, params.get("training_file"), "training_file")
        validation = params.get("validation_file")
        if validation is not None:
            validation = _file_param(store, validation, "validation_file")
        mtype, hp = _hp_of(params)
        suffix = params.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64 or ":" in suffix):
            raise ApiError(400, "Invalid suffix: at most 64 characters, no ':'.", param="suffix")
        metadata = params.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise ApiError(
                400, "Invalid metadata: at most 16 string keys with string values.", param="metadata"
            )
        integrations = params.get("integrations")
        if integrations is not None:
            _check_integrations(integrations)
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ApiError(400, f"Invalid seed {seed!r}: use a non-negative integer.", param="seed")
        if seed is None:
            seed = random.randint(0, 2**31 - 1)
        job_id = new_id("ftjob-")
        base = base_model_of(model)
        ft_name = f"ft:{base}:{ORG_SLUG}:{suffix or ''}:{job_id[-8:]}"
        if store.flavour == "azure":
            ft_name = azure.fine_tuned_name(base, suffix, job_id)
        job: dict[str, Any] = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(now),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {k: hp[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")},
            "model": model,
            "organization_id": ORG_ID,
            "result_files": [],
            "seed": seed,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": training,
            "validation_file": validation,
            "estimated_finish": None,
            "integrations": integrations or None,
            "metadata": metadata or None,
            "method": {"type": mtype, mtype: {"hyperparameters": hp}},
            "user_provided_suffix": suffix,
        }
        if store.flavour == "azure":
            job["trainingType"] = azure.training_type_of(params)
        store.jobs[job_id] = job
        store.runtime[job_id] = {"pace": pace, "phase_started": now, "steps_done": 0, "ft_name": ft_name}
        if external:
            store.runtime[job_id]["external"] = True
        add_event(
            store,
            job_id,
            now,
            f"Validating training file: {training}"
            + (f" and validation file: {validation}" if validation else ""),
        )
        store.save()
        return job
