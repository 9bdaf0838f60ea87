"""Deploy a fine-tuned model on Azure OpenAI (and take it down again) through Azure Resource Manager.

On Azure a fine-tuned model (``<base>.ft-<hex>``, or a checkpoint ``ftchkpt-<hex>``) answers only once it is
deployed: ``PUT {management}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/
accounts/{account}/deployments/{name}?api-version=2024-10-01`` with a SKU and the model, then the deployment's
``provisioningState`` moves from ``Creating`` to ``Succeeded`` (or ``Failed``). Chat requests then name the
deployment, not the model.

:func:`deploy_model` never deploys twice: it looks the name up first, re-uses a deployment of the same model
(waiting for it if it is still being created), refuses a name that serves another model, and re-tries one
that failed. Transient answers (429, 5xx, connection errors) are retried with the library's retry policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_wb._retry import RetryPolicy, policy_or_default
from finetune_wb.errors import FineTuneError
from finetune_wb.jobs.azure_auth import AzureAccount, AzureAuthError, management_token

logger = logging.getLogger(__name__)

API_VERSION = "2024-10-01"
"""The Cognitive Services management API version used for deployments."""

Sku = Literal["developer", "standard", "globalstandard"]
SKU_NAMES: dict[str, str] = {
    "developer": "DeveloperTier",
    "standard": "Standard",
    "globalstandard": "GlobalStandard",
}
"""Our short names -> Azure's SKU names. Developer tier: no hosting fee, Azure deletes it after 24 h (for
evaluation); Standard / GlobalStandard: an hourly hosting fee, deleted after 15 days without calls."""
DEFAULT_CAPACITY = 50
"""Capacity units (thousands of tokens per minute) when none is given."""
TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")


class DeploymentError(FineTuneError):
    """A deployment could not be created, found or removed; ``.deployment`` names it."""

    def __init__(self, message: str, *, deployment: str | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.deployment = deployment
        self.model = model


class DeploymentNameInUse(DeploymentError):
    """The deployment name already serves another model."""


class DeploymentFailed(DeploymentError):
    """Azure ended the deployment in ``Failed``; the fine-tuned model itself is untouched."""


class Deployment(BaseModel):
    """A deployment as this library reports and records it (from ARM's object)."""

    name: str
    model: str
    sku: str = Field(description="Azure's SKU name: DeveloperTier, Standard or GlobalStandard")
    capacity: int | None = None
    state: str = Field(description="provisioningState: Creating, Updating, Succeeded, Failed, Deleting ...")
    id: str | None = Field(None, description="the ARM resource id")
    error: str | None = Field(None, description="why it failed, when it did")
    reused: bool = Field(False, description="it existed already for the same model; nothing was created")

    @classmethod
    def from_arm(cls, obj: dict[str, Any], *, reused: bool = False) -> Deployment:
        props = obj.get("properties") or {}
        sku = obj.get("sku") or {}
        err = props.get("error")
        message = err.get("message") if isinstance(err, dict) else (str(err) if err else None)
        return cls(
            name=str(obj.get("name", "")),
            model=str((props.get("model") or {}).get("name", "")),
            sku=str(sku.get("name", "")),
            capacity=sku.get("capacity"),
            state=str(props.get("provisioningState", "Unknown")),
            id=obj.get("id"),
            error=message,
            reused=reused,
        )


class _ArmHttpError(Exception):
    """An ARM error answer; ``status_code`` and ``response`` let the retry policy judge it."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.status_code: int = response.status_code
        try:
            err = response.json().get("error") or {}
        except ValueError:
            err = {}
        self.code = str(err.get("code") or response.status_code)
        self.message = str(err.get("message") or response.text or response.reason_phrase)
        super().__init__(f"{self.status_code} {self.code}: {self.message}")


class _Arm:
    """A minimal ARM client for one account's deployments (httpx, imported lazily)."""

    def __init__(
        self,
        account: AzureAccount,
        *,
        token: str | None,
        credential: Any,
        http: Any,
        retry: RetryPolicy | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.account = account
        self._token = management_token(account, token=token, credential=credential)
        self._http = http
        self.policy = policy_or_default(retry, sleep)

    def request(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        url = f"{self.account.base}/deployments/{name}"
        headers = {"Authorization": f"Bearer {self._token}"}

        def once() -> Any:
            client = self._http or httpx
            response = client.request(
                method, url, params={"api-version": API_VERSION}, json=body, headers=headers, timeout=60.0
            )
            if response.status_code >= 400 and response.status_code != 404:
                raise _ArmHttpError(response)
            return response

        try:
            return self.policy.call(once)
        except _ArmHttpError as exc:
            if exc.status_code in (401, 403):
                raise AzureAuthError(
                    f"Azure refused the token for {self.account.describe()} ({exc.code}: {exc.message}); "
                    "check that it is an ARM token for this tenant and that your identity has the Cognitive "
                    "Services Contributor role on the account"
                ) from exc
            raise

    def get(self, name: str) -> dict[str, Any] | None:
        response = self.request("GET", name)
        if response.status_code == 404:
            code = _error_code(response)
            if code not in ("DeploymentNotFound", "NotFound", "404"):
                raise DeploymentError(
                    f"{self.account.describe()} was not found ({code}: {_error_message(response)}); check the "
                    "subscription, resource group and account name",
                    deployment=name,
                )
            return None
        return dict(response.json())


def _error_code(response: Any) -> str:
    try:
        return str((response.json().get("error") or {}).get("code") or response.status_code)
    except ValueError:
        return str(response.status_code)


def _error_message(response: Any) -> str:
    try:
        return str((response.json().get("error") or {}).get("message") or response.text)
    except ValueError:
        return str(response.text)


def sku_name(sku: str) -> str:
    """Azure's SKU name for ``developer``/``standard``/``globalstandard`` (Azure's own names pass through)."""
    key = sku.strip().lower().replace("_", "").replace("-", "")
    key = "developer" if key == "developertier" else key
    if key not in SKU_NAMES:
        raise FineTuneError(f"unknown sku {sku!r}: use developer, standard or globalstandard")
    return SKU_NAMES[key]


def get_deployment(
    name: str,
    *,
    account: AzureAccount,
    token: str | None = None,
    credential: Any = None,
    http: Any = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployment | None:
    """The deployment ``name`` on ``account``, or None when it does not exist."""
    arm = _Arm(account, token=token, credential=credential, http=http, retry=retry, sleep=sleep)
    obj = arm.get(name)
    return Deployment.from_arm(obj) if obj is not None else None


def deploy_model(
    model: str,
    *,
    name: str,
    account: AzureAccount,
    sku: str = "developer",
    capacity: int | None = None,
    version: str = "1",
    token: str | None = None,
    credential: Any = None,
    wait: bool = True,
    timeout: float | None = None,
    poll_interval: float = 5.0,
    on_state: Callable[[Deployment], None] | None = None,
    http: Any = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Deployment:
    """Deploy ``model`` (a fine-tuned model or checkpoint id) as ``name`` and, with ``wait``, wait until it
    has succeeded. Never deploys twice (see the module docstring).

    Raises :class:`DeploymentNameInUse` (another model has the name), :class:`DeploymentFailed` (Azure's
    message; call again to retry), :class:`DeploymentError` (quota, a wrong location, a timeout: the
    deployment keeps provisioning, call again to keep waiting) or :class:`AzureAuthError`.
    """
    azure_sku = sku_name(sku)
    capacity = DEFAULT_CAPACITY if capacity is None else capacity
    if capacity < 1:
        raise DeploymentError(f"capacity must be >= 1, got {capacity}", deployment=name, model=model)
    arm = _Arm(account, token=token, credential=credential, http=http, retry=retry, sleep=sleep)
    existing = arm.get(name)
    if existing is not None:
        current = Deployment.from_arm(existing, reused=True)
        if current.model != model:
            raise DeploymentNameInUse(
                f"deployment {name!r} on {account.describe()} already serves {current.model!r}, not "
                f"{model!r}; choose another deployment name, or undeploy {name!r} first",
                deployment=name,
                model=model,
            )
        if current.state != "Failed":
            logger.info("deployment %s of %s exists (%s): re-using it", name, model, current.state)
            if on_state is not None:
                on_state(current)
            if not wait or current.state == "Succeeded":
                return current
            return _wait(arm, name, model, timeout, poll_interval, on_state, sleep, clock, reused=True)
        logger.info("deployment %s of %s failed before (%s): deploying again", name, model, current.error)
    body = {
        "sku": {"name": azure_sku, "capacity": capacity},
        "properties": {"model": {"format": "OpenAI", "name": model, "version": version}},
    }
    try:
        obj = arm.request("PUT", name, body).json()
    except _ArmHttpError as exc:
        raise _put_error(exc, name=name, model=model, account=account, capacity=capacity) from exc
    created = Deployment.from_arm(obj)
    logger.info("deployment %s of %s created (%s)", name, model, created.state)
    if on_state is not None:
        on_state(created)
    if not wait:
        return created
    return _wait(arm, name, model, timeout, poll_interval, on_state, sleep, clock, reused=False)


def _put_error(
    exc: _ArmHttpError, *, name: str, model: str, account: AzureAccount, capacity: int
) -> Exception:
    if exc.code == "InsufficientQuota" or "quota" in exc.message.lower():
        hint = (
            f"lower the capacity (asked {capacity}), delete another deployment of this SKU, or request more "
            "quota (Azure portal: Quotas)"
        )
    elif exc.code in ("DeploymentModelNotSupported", "InvalidResourceProperties", "ModelNotFound"):
        hint = (
            "check the model id: a fine_tuned_model of a succeeded job (or a checkpoint id) on this account"
        )
    else:
        hint = "check the message above; nothing was deployed"
    return DeploymentError(
        f"Azure refused to deploy {model!r} as {name!r} on {account.describe()}: {exc.code}: {exc.message}; {hint}",
        deployment=name,
        model=model,
    )


def _wait(
    arm: _Arm,
    name: str,
    model: str,
    timeout: float | None,
    poll_interval: float,
    on_state: Callable[[Deployment], None] | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    *,
    reused: bool,
) -> Deployment:
    started = clock()
    last_state = None
    while True:
        obj = arm.get(name)
        if obj is None:
            raise DeploymentError(
                f"deployment {name!r} disappeared while it was being created (deleted by someone else?); "
                "deploy again",
                deployment=name,
                model=model,
            )
        dep = Deployment.from_arm(obj, reused=reused)
        if dep.state != last_state and on_state is not None:
            on_state(dep)
        last_state = dep.state
        if dep.state == "Succeeded":
            return dep
        if dep.state in TERMINAL_STATES:
            raise DeploymentFailed(
                f"deployment {name!r} of {model!r} ended {dep.state}: {dep.error or 'no reason given'}; the "
                "fine-tuned model is untouched - fix the cause and deploy again (the same call retries it)",
                deployment=name,
                model=model,
            )
        if timeout is not None and clock() - started >= timeout:
            raise DeploymentError(
                f"deployment {name!r} is still {dep.state} after {timeout:.0f} s; it keeps provisioning on "
                "Azure - call deploy again to keep waiting (nothing is deployed twice)",
                deployment=name,
                model=model,
            )
        sleep(poll_interval)


def undeploy(
    name: str,
    *,
    account: AzureAccount,
    token: str | None = None,
    credential: Any = None,
    http: Any = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Delete the deployment ``name`` (the fine-tuned model stays). True if it existed, False if not."""
    arm = _Arm(account, token=token, credential=credential, http=http, retry=retry, sleep=sleep)
    try:
        response = arm.request("DELETE", name)
    except _ArmHttpError as exc:
        raise DeploymentError(
            f"Azure refused to delete deployment {name!r} on {account.describe()}: {exc.code}: {exc.message}",
            deployment=name,
        ) from exc
    if response.status_code == 404:
        arm.get(name)  # a missing account raises; a missing deployment is simply gone
        return False
    return bool(response.status_code != 204)  # 200/202: deleted (or being deleted); 204: there was none
