"""The emulator's Azure flavour: Azure OpenAI's URL layout, id shapes and deployment-gated chat.

- Data plane: the classic routes ``/openai/...?api-version=`` (``/openai/deployments/{name}/...`` for chat)
  and the v1 routes ``/openai/v1/...`` are served by the same handlers as ``/v1/...``.
- Fine-tuned models are named ``<base>.ft-<hex>[-<suffix>]``, checkpoints ``ftchkpt-<hex>``.
- A fine-tuned model answers only through a deployment that has succeeded (the ``model`` of a chat request
  is a deployment name, as on Azure); otherwise the answer is Azure's 404 ``DeploymentNotFound``. Base models
  answer under their own name (as if deployed under it), so a baseline needs no deployment step.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from finetune_wb.emulator.state import ApiError

FLAVOURS = ("openai", "azure")
_DEPLOYMENT = re.compile(r"^/deployments/([^/]+)(?=/)")

DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again."
)


def check_flavour(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    return flavour


def fine_tuned_name(base: str, suffix: str | None, job_id: str) -> str:
    """Azure's shape for a fine-tuned model: ``gpt-4o-mini-2024-07-18.ft-<32 hex>[-suffix]``."""
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:32]
    return f"{base}.ft-{digest}" + (f"-{suffix}" if suffix else "")


def checkpoint_name(job_id: str, step: int) -> str:
    """Azure's shape for a checkpoint model: ``ftchkpt-<32 hex>`` (it does not name its base model)."""
    return "ftchkpt-" + hashlib.sha256(f"{job_id}:{step}".encode()).hexdigest()[:32]


TRAINING_TYPES = ("standard", "globalstandard", "developertier")


def training_type_of(params: dict[str, Any]) -> str:
    """The job's ``trainingType`` (Azure's extra field; ``standard`` when absent), a 400 for an unknown one."""
    value = params.get("trainingType", "standard")
    if not isinstance(value, str) or value.lower() not in TRAINING_TYPES:
        raise ApiError(
            400,
            f"Invalid trainingType {value!r}; use standard, globalstandard or developerTier.",
            param="trainingType",
        )
    return value


AZURE_RESULT_COLUMNS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "validation_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
"""The columns of Azure's results.csv (more than OpenAI's step_metrics.csv)."""


def azure_result_csv(job: dict[str, Any], rt: dict[str, Any], metrics_at: Any) -> str:
    """The result file in Azure's columns; the full validation metrics are on the last step only."""
    rows = [",".join(AZURE_RESULT_COLUMNS)]
    total = rt["total_steps"]
    for step in range(1, total + 1):
        m = metrics_at(job["seed"], step, total, validation=rt["has_valid"])
        last = step == total and rt["has_valid"]
        cells = [
            step,
            m["train_loss"],
            m["train_mean_token_accuracy"],
            m.get("valid_loss", ""),
            m.get("valid_mean_token_accuracy", ""),
            m.get("valid_loss", "") if last else "",
            m.get("valid_mean_token_accuracy", "") if last else "",
        ]
        rows.append(",".join(str(c) for c in cells))
    return "\n".join(rows) + "\n"


def deployment_not_found(name: str) -> ApiError:
    return ApiError(404, DEPLOYMENT_NOT_FOUND + f" (deployment {name!r})", code="DeploymentNotFound")


class AzurePaths:
    """ASGI wrapper mapping Azure OpenAI's data-plane paths onto the emulator's ``/v1`` routes.

    ``/openai/v1/x`` -> ``/v1/x``; ``/openai/deployments/{name}/x`` and ``/openai/x`` -> ``/v1/x``. With
    ``require_api_version`` (the Azure flavour), a classic route without ``?api-version=`` answers 404 the
    way Azure does.
    """

    def __init__(self, app: Any, *, require_api_version: bool = False) -> None:
        self.app = app
        self.require_api_version = require_api_version

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/openai/"):
            await self.app(scope, receive, send)
            return
        rest = path[len("/openai") :]
        if rest.startswith("/v1/"):
            rest = rest[len("/v1") :]
        else:
            if self.require_api_version and b"api-version=" not in scope.get("query_string", b""):
                await _send_json(
                    send,
                    404,
                    {
                        "error": {
                            "code": "404",
                            "message": "Resource not found: the classic Azure OpenAI routes need "
                            "?api-version= (e.g. 2024-10-21), or use the /openai/v1/ routes.",
                        }
                    },
                )
                return
            rest = _DEPLOYMENT.sub("", rest)
        new_path = "/v1" + rest
        scope = {**scope, "path": new_path, "raw_path": new_path.encode()}
        await self.app(scope, receive, send)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": raw})
