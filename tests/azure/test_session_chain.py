"""The whole Azure chain from FineTuneSession on the emulator's Azure flavour: validate -> upload -> job ->
wait -> deploy -> evaluate by deployment name -> undeploy; resume never deploys twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.jobs.deployments import DeploymentFailed
from finetune_wb.model_ids import parse_model_id
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.wandb_readback import read_run

SPEC = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=2, training_type="globalstandard")
BASE = "gpt-4o-mini-2024-07-18"
DEPLOY_PATH = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/accounts/acct-1"


def _puts(emu: Any) -> int:
    return sum(1 for e in emu.journal if e.method == "PUT" and e.path.startswith(DEPLOY_PATH))


def _session(emu: Any, tmp_path: Path, client: Any) -> FineTuneSession:
    return FineTuneSession(
        project="t-azure", client=client, state_path=tmp_path / "state.json", poll_interval=0.05
    )


def _trained(emu: Any, tmp_path: Path, client: Any) -> FineTuneSession:
    session = _session(emu, tmp_path, client)
    session.prepare(load_demo_records()[:60], template=demo_template(), n_train=20, seed=1)
    assert session.validate(model=SPEC.model).ok
    session.fine_tune(SPEC)
    job = session.wait()
    assert job.status == "succeeded"
    assert parse_model_id(job.fine_tuned_model).shape == "azure-ft"
    return session


@pytest.mark.parametrize("style", ["classic", "v1"])
def test_whole_chain_on_azure(azure_env: Any, tmp_path: Path, style: str, no_online_wandb: list[str]) -> None:
    emu = azure_env
    client = emu.azure_client() if style == "classic" else emu.v1_client()
    session = _trained(emu, tmp_path, client)
    ft = session.fine_tuned_model
    assert emu.job(session.job_id)["trainingType"] == "globalstandard"

    # before the deployment, the fine-tune does not answer (Azure's DeploymentNotFound)
    import openai

    with pytest.raises(openai.NotFoundError, match=r"deployment for this resource does not exist"):
        client.chat.completions.create(model=ft, messages=[{"role": "user", "content": "hi"}])

    from finetune_wb.errors import ConfigError

    with pytest.raises(ConfigError, match=r"answers only once deployed: call session.deploy\(\) first"):
        session.evaluate(baselines=[BASE])
    dep = session.deploy(name="ft-eval", poll_interval=0.05)
    seen = len(emu.journal)
    assert (dep.name, dep.model, dep.sku, dep.state) == ("ft-eval", ft, "DeveloperTier", "Succeeded")
    assert session.deployment == "ft-eval"
    assert session.state.deployment["hosting_usd_per_hour"] == 0.0
    deploy_run = read_run(Path(session.state.wandb_runs["deploy"]))  # W&B: model -> deployment
    assert deploy_run.config["deployment"]["name"] == "ft-eval"
    assert deploy_run.config["deployment"]["model"] == ft
    inputs = deploy_run.config["lineage"]["inputs"]
    assert [i["type"] for i in inputs] == ["model"]
    assert inputs[0]["sha256"] == session.state.model_artifact["digest"]
    assert deploy_run.summary["deployment/sku"] == "DeveloperTier"

    report = session.evaluate(baselines=[BASE], evaluators=["exact_match"], max_tokens=5)
    label = f"ft-eval ({ft})"
    assert report.metric(label, "exact_match") > report.metric(BASE, "exact_match")
    chats = [e for e in emu.journal[seen:] if e.path == "/v1/chat/completions" and e.method == "POST"]
    assert chats and all(e.status == 200 for e in chats)

    # deploying again (a re-run) re-uses the deployment: no second PUT
    again = session.deploy(name="ft-eval", poll_interval=0.05)
    assert again.reused and _puts(emu) == 1

    assert "deployment: ft-eval (DeveloperTier, Succeeded, no hosting fee)" in str(session.summary())
    assert session.undeploy() is True
    assert emu.deployment("ft-eval") is None
    assert session.state.deployment["state"] == "Deleted"
    assert no_online_wandb == []


def test_failed_deployment_leaves_model_and_state_resumable(azure_env: Any, tmp_path: Path) -> None:
    emu = azure_env
    session = _trained(emu, tmp_path, emu.azure_client())
    ft = session.fine_tuned_model
    emu.fail_next_deployment("The model could not be provisioned in this region.")
    with pytest.raises(DeploymentFailed, match="could not be provisioned"):
        session.deploy(name="ft-x", poll_interval=0.05)
    assert session.state.deployment["state"] == "Failed"
    assert session.fine_tuned_model == ft and session.deployment is None
    # the model still exists and can be deployed once the cause is gone
    resumed = FineTuneSession(
        project="t-azure", client=emu.azure_client(), state_path=tmp_path / "state.json"
    )
    dep = resumed.deploy(poll_interval=0.05)  # the recorded name is re-used
    assert dep.name == "ft-x" and dep.state == "Succeeded" and resumed.deployment == "ft-x"
