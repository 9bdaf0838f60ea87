"""The session's deploy and undeploy steps (Azure OpenAI): the fine-tune behind a deployment name, once.

The deployment's name, model, SKU and account go into the state file *before* Azure is asked for it, and
its outcome after; :func:`~finetune_wb.jobs.deployments.deploy_model` looks the name up before creating
anything. So a step killed mid-deploy and run again waits for the deployment it asked for instead of
asking again, and a deployment that failed leaves the fine-tuned model and the rest of the state as they
were (deploy again once the cause is fixed). Once it has succeeded, :meth:`FineTuneSession.evaluate`
evaluates the deployment by name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError
from finetune_wb.session.runs import artifact_ref

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.jobs.azure_auth import AzureAccount
    from finetune_wb.jobs.deployments import Deployment
    from finetune_wb.session.context import StepContext

logger = logging.getLogger("finetune_wb.session")


def default_deployment_name(session_id: str) -> str:
    return f"ft-{session_id}"


def deploy_step(
    ctx: StepContext,
    *,
    account: AzureAccount | None,
    name: str | None = None,
    sku: str = "developer",
    capacity: int | None = None,
    model: str | None = None,
    token: str | None = None,
    credential: Any = None,
    timeout: float | None = None,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    http: Any = None,
) -> Deployment:
    """Body of :meth:`FineTuneSession.deploy`."""
    from finetune_wb.jobs.azure_auth import AzureAccount
    from finetune_wb.jobs.deployments import (
        DeploymentFailed,
        deploy_model,
        get_deployment,
        sku_name,
    )
    from finetune_wb.providers.hosting import hosting_usd_per_hour

    st = ctx.state
    model = model or st.fine_tuned_model
    if not model:
        raise ConfigError("no fine-tuned model to deploy yet: call session.wait() first (or pass model=...)")
    recorded = st.deployment or {}
    if account is None:
        if recorded.get("account"):
            account = AzureAccount.model_validate(recorded["account"])
        else:
            account = AzureAccount.from_env()
    name = name or recorded.get("name") or default_deployment_name(st.session_id)
    azure_sku = sku_name(sku)
    auth = {"token": token, "credential": credential, "http": http, "sleep": sleep}
    if (
        recorded.get("name") == name
        and recorded.get("model") == model
        and recorded.get("state") == "Succeeded"
    ):
        current = get_deployment(name, account=account, **auth)
        if current is not None and current.model == model and current.state == "Succeeded":
            logger.info("session %s: deployment %s already serves %s", st.session_id, name, model)
            return current.model_copy(update={"reused": True})
        logger.warning(
            "deployment %s recorded in the session is gone (Azure deletes a Developer tier one after "
            "24 h); deploying it again",
            name,
        )
    fee = hosting_usd_per_hour(model, azure_sku)
    st.deployment = {
        "name": name,
        "model": model,
        "sku": azure_sku,
        "capacity": capacity,
        "account": account.model_dump(mode="json"),
        "state": "requested",
        "hosting_usd_per_hour": fee,
        "requested_at": time.time(),
    }
    ctx.save()
    try:
        dep = deploy_model(
            model,
            name=name,
            account=account,
            sku=sku,
            capacity=capacity,
            timeout=timeout,
            poll_interval=poll_interval,
            **auth,
        )
    except DeploymentFailed as exc:
        st.deployment = {**st.deployment, "state": "Failed", "error": str(exc)}
        ctx.save()
        raise
    st.deployment = {
        **st.deployment,
        "state": dep.state,
        "id": dep.id,
        "capacity": dep.capacity,
        "error": None,
        "reused": dep.reused,
    }
    ctx.save()
    _log(ctx, dep, fee, account)
    return dep


def _log(ctx: StepContext, dep: Deployment, fee: float, account: AzureAccount) -> None:
    if not ctx.runs.enabled:
        return
    from finetune_wb.tracking.deployments import log_deployment

    st = ctx.state
    run = ctx.runs.start("deploy", name=f"deploy-{dep.name}", config={"job_id": st.job_id})
    try:
        log_deployment(
            run,
            dep,
            model_artifact=artifact_ref(st.model_artifact),
            hosting_usd_per_hour=fee,
            account=account.account,
            resource_group=account.resource_group,
        )
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    ctx.runs.finished("deploy")


def undeploy_step(
    ctx: StepContext,
    *,
    account: AzureAccount | None = None,
    name: str | None = None,
    token: str | None = None,
    credential: Any = None,
    http: Any = None,
) -> bool:
    """Body of :meth:`FineTuneSession.undeploy`: delete the session's deployment (the model stays)."""
    from finetune_wb.jobs.azure_auth import AzureAccount
    from finetune_wb.jobs.deployments import undeploy

    st = ctx.state
    recorded = st.deployment or {}
    name = name or recorded.get("name")
    if not name:
        raise ConfigError("the session has no deployment to remove (pass name=... for another one)")
    if account is None:
        account = (
            AzureAccount.model_validate(recorded["account"])
            if recorded.get("account")
            else AzureAccount.from_env()
        )
    deleted = undeploy(name, account=account, token=token, credential=credential, http=http)
    if recorded.get("name") == name:
        st.deployment = {**recorded, "state": "Deleted", "deleted_at": time.time()}
        ctx.save()
    return deleted


def deployed_name(ctx: StepContext) -> str | None:
    """The deployment that serves the session's fine-tune, when it has succeeded (what evaluate asks)."""
    dep = ctx.state.deployment or {}
    if dep.get("state") == "Succeeded" and dep.get("model") == ctx.state.fine_tuned_model:
        return str(dep["name"])
    return None
