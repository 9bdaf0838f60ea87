"""The ``[azure]`` part of ``finetune-wb run``: an Azure client from the config, and the deploy step.

Kept apart from :mod:`finetune_wb.session.config_runner` so the runner stays one page: it builds the
client (classic ``?api-version=`` routes through ``AzureOpenAI``, or the ``/openai/v1/`` routes through a
plain ``OpenAI``) and, after the job, deploys the fine-tune (re-using the deployment on a resumed run).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.config.model import AzureConfig
    from finetune_wb.session.facade import FineTuneSession


def azure_client(cfg: AzureConfig) -> Any:
    """The data-plane client ``[azure]`` describes (the key from ``AZURE_OPENAI_API_KEY``)."""
    import openai

    endpoint = cfg.endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise ConfigError(
            "[azure] needs the resource's endpoint: endpoint = 'https://RESOURCE.openai.azure.com' in the config "
            "or AZURE_OPENAI_ENDPOINT in the environment"
        )
    key = os.environ.get("AZURE_OPENAI_API_KEY")
    if cfg.v1:
        if not key:
            raise ConfigError("[azure] v1 = true needs AZURE_OPENAI_API_KEY (the resource's key)")
        return openai.OpenAI(base_url=endpoint.rstrip("/") + "/openai/v1/", api_key=key)
    try:
        return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=cfg.api_version, api_key=key)
    except openai.OpenAIError as exc:
        raise ConfigError(
            f"[azure]: cannot build the Azure OpenAI client ({exc}); set AZURE_OPENAI_API_KEY"
        ) from exc


def hosting_note(model: str, cfg: AzureConfig) -> str:
    """The deployment's part of the cost estimate: `` + hosting $1.70/hour (standard)`` or nothing."""
    from finetune_wb.jobs.deployments import sku_name
    from finetune_wb.providers.hosting import hosting_usd_per_hour

    fee = hosting_usd_per_hour(model, sku_name(cfg.sku))
    return (
        f" + hosting ${fee:.2f}/hour while deployed ({cfg.sku})"
        if fee
        else " (+ no hosting fee: Developer tier)"
    )


def deploy_for_run(
    session: FineTuneSession, cfg: AzureConfig, *, say: Callable[[str], None], token: str | None = None
) -> None:
    """Deploy the session's fine-tune as ``[azure]`` says (once: a resumed run re-uses the deployment)."""
    from finetune_wb.jobs.azure_auth import AzureAccount

    account = AzureAccount.from_env(
        subscription=cfg.subscription,
        resource_group=cfg.resource_group,
        account=cfg.account,
        management_url=cfg.management_url,
    )
    dep = session.deploy(
        name=cfg.deployment,
        sku=cfg.sku,
        capacity=cfg.capacity,
        account=account,
        token=token,
        poll_interval=session.poll_interval,
    )
    fee = (session.state.deployment or {}).get("hosting_usd_per_hour") or 0.0
    cost = "no hosting fee" if not fee else f"hosting about ${fee:.2f}/hour until undeployed"
    reused = " (re-used)" if dep.reused else ""
    say(f"deployment {dep.name}{reused}: {dep.state}, {dep.sku}, {cost}")
