"""Azure's management plane for the emulator's Azure flavour: model deployments (ARM's deployments routes).

``PUT/GET/DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/
{account}/deployments/{name}?api-version=...`` and the list route without ``{name}``. A new deployment is
``Creating`` and becomes ``Succeeded`` (or ``Failed``, when a failure was injected) after
``provision_seconds`` on the emulator's clock. Errors are ARM's shape ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator.bodies import admin_json
from finetune_wb.emulator.state import BASE_MODELS

ACCOUNT_PATH = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.CognitiveServices"
    "/accounts/{account}"
)
SKUS = {"developertier": "DeveloperTier", "standard": "Standard", "globalstandard": "GlobalStandard"}
DEFAULT_QUOTA = 1000
"""Capacity units (thousands of tokens per minute) the emulated account may deploy in all, per SKU."""


class ArmError(Exception):
    """An error answered in ARM's shape (``{"error": {"code", "message"}}``), not OpenAI's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status)


@dataclass
class Deployments:
    """The emulated account's deployments and the knobs tests turn (quota, injected failures, timing)."""

    provision_seconds: float = 30.0
    quota: int = DEFAULT_QUOTA
    fail_next: list[str] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)
    failure: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self.lock:
            self.items.clear()
            self.ready_at.clear()
            self.failure.clear()
            self.fail_next.clear()
            self.quota = DEFAULT_QUOTA

    def tick(self, now: float) -> None:
        with self.lock:
            for name, dep in self.items.items():
                props = dep["properties"]
                if props["provisioningState"] in ("Creating", "Updating") and now >= self.ready_at[name]:
                    if name in self.failure:
                        props["provisioningState"] = "Failed"
                        props["error"] = {"code": "DeploymentFailed", "message": self.failure[name]}
                    else:
                        props["provisioningState"] = "Succeeded"

    def get(self, name: str, now: float) -> dict[str, Any] | None:
        with self.lock:
            self.tick(now)
            dep = self.items.get(name)
            return json.loads(json.dumps(dep)) if dep is not None else None

    def put(
        self, location: dict[str, str], name: str, body: Any, *, now: float, known_model: Any
    ) -> tuple[dict[str, Any], int]:
        sku_in = body.get("sku") if isinstance(body, dict) else None
        props_in = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(sku_in, dict) or not isinstance(sku_in.get("name"), str):
            raise ArmError(400, "InvalidResourceProperties", "The deployment needs 'sku': {'name': ...}.")
        sku = SKUS.get(sku_in["name"].lower())
        if sku is None:
            raise ArmError(
                400,
                "InvalidSkuName",
                f"The sku '{sku_in['name']}' is not supported for this model; use one of "
                f"{', '.join(SKUS.values())}.",
            )
        capacity = sku_in.get("capacity", 1)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ArmError(
                400, "InvalidCapacity", f"The capacity must be a positive integer, got {capacity!r}."
            )
        model = (props_in or {}).get("model") if isinstance(props_in, dict) else None
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
            raise ArmError(
                400,
                "InvalidResourceProperties",
                "The deployment needs 'properties': {'model': {'format': 'OpenAI', 'name': ..., 'version': ...}}.",
            )
        if model.get("format") != "OpenAI":
            raise ArmError(
                400, "InvalidModelFormat", f"The model format '{model.get('format')}' is not 'OpenAI'."
            )
        if not known_model(model["name"]):
            raise ArmError(
                400,
                "DeploymentModelNotSupported",
                f"The model '{model['name']}' of format 'OpenAI' was not found in this account. Deploy a "
                "fine-tuned model of a succeeded job (its fine_tuned_model) or a checkpoint of one.",
            )
        with self.lock:
            self.tick(now)
            existing = self.items.get(name)
            used = sum(
                d["sku"]["capacity"]
                for n, d in self.items.items()
                if n != name and d["sku"]["name"] == sku and d["properties"]["provisioningState"] != "Failed"
            )
            if used + capacity > self.quota:
                raise ArmError(
                    400,
                    "InsufficientQuota",
                    f"This operation require {capacity} new capacity in quota Tokens Per Minute (thousands) "
                    f"- {sku}, which is bigger than the current available capacity {self.quota - used}. "
                    "Lower the capacity, delete another deployment, or ask for more quota.",
                )
            if (
                existing is not None
                and existing["properties"]["model"]["name"] == model["name"]
                and existing["sku"] == {"name": sku, "capacity": capacity}
                and existing["properties"]["provisioningState"] != "Failed"
            ):
                return json.loads(json.dumps(existing)), 200
            base = ACCOUNT_PATH.format(**location)
            dep = {
                "id": f"{base}/deployments/{name}",
                "type": "Microsoft.CognitiveServices/accounts/deployments",
                "name": name,
                "sku": {"name": sku, "capacity": capacity},
                "properties": {
                    "model": {
                        "format": "OpenAI",
                        "name": model["name"],
                        "version": str(model.get("version", "1")),
                    },
                    "provisioningState": "Creating" if existing is None else "Updating",
                },
                "systemData": {"createdAt": now, "lastModifiedAt": now},
            }
            self.items[name] = dep
            self.ready_at[name] = now + self.provision_seconds
            self.failure.pop(name, None)
            if self.fail_next:
                self.failure[name] = self.fail_next.pop(0)
            return json.loads(json.dumps(dep)), 201 if existing is None else 200

    def delete(self, name: str) -> bool:
        with self.lock:
            self.ready_at.pop(name, None)
            self.failure.pop(name, None)
            return self.items.pop(name, None) is not None

    def model_of(self, name: str, now: float) -> str | None:
        """The model a *succeeded* deployment serves; None when ``name`` is no deployment or is not ready."""
        dep = self.get(name, now)
        if dep is None or dep["properties"]["provisioningState"] != "Succeeded":
            return None
        return str(dep["properties"]["model"]["name"])


def _needs_bearer_and_version(request: Request) -> None:
    auth = request.headers.get("authorization", "")
    if not (auth.lower().startswith("bearer ") and auth[7:].strip()):
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing; send an ARM bearer token "
            "(the emulator accepts any non-empty token).",
        )
    if not request.query_params.get("api-version"):
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )


def management_routes(core: Any) -> list[Route]:
    """The deployments routes; ``core`` has ``deployments``, ``now()`` and ``store``."""
    deps: Deployments = core.deployments

    def known_model(name: str) -> bool:
        core.tick_all()
        with core.store.lock:
            return name in BASE_MODELS or name in core.store.fine_tuned_models()

    def location_of(request: Request) -> dict[str, str]:
        p = request.path_params
        return {k: p[k] for k in ("subscription", "resource_group", "account")}

    async def one(request: Request) -> Response:
        try:
            _needs_bearer_and_version(request)
            name = request.path_params["name"]
            if request.method == "GET":
                dep = deps.get(name, core.now())
                if dep is None:
                    raise ArmError(
                        404, "DeploymentNotFound", f"The deployment '{name}' does not exist in this account."
                    )
                return JSONResponse(dep)
            if request.method == "DELETE":
                return Response(status_code=200 if deps.delete(name) else 204)
            body = await admin_json(request)
            dep, status = deps.put(location_of(request), name, body, now=core.now(), known_model=known_model)
            return JSONResponse(dep, status_code=status)
        except ArmError as exc:
            return exc.response()

    async def listing(request: Request) -> Response:
        try:
            _needs_bearer_and_version(request)
        except ArmError as exc:
            return exc.response()
        with deps.lock:
            deps.tick(core.now())
            return JSONResponse({"value": json.loads(json.dumps(list(deps.items.values())))})

    base = ACCOUNT_PATH
    return [
        Route(base + "/deployments", listing, methods=["GET"]),
        Route(base + "/deployments/{name}", one, methods=["GET", "PUT", "DELETE"]),
    ]


def admin_deployment_routes(core: Any, prefix: str) -> list[Route]:
    """Test controls over HTTP: fail the next deployment, set the quota, set the provisioning time."""
    deps: Deployments = core.deployments

    async def control(request: Request) -> Response:
        body = await admin_json(request)
        if "fail_next" in body:
            deps.fail_next.append(str(body["fail_next"]))
        if "quota" in body:
            deps.quota = int(body["quota"])
        if "provision_seconds" in body:
            deps.provision_seconds = float(body["provision_seconds"])
        return JSONResponse(
            {
                "quota": deps.quota,
                "provision_seconds": deps.provision_seconds,
                "fail_next": list(deps.fail_next),
            }
        )

    return [Route(prefix + "/deployments", control, methods=["POST"])]
