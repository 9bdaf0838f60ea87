"""A process killed (kill -9) while its session deploys: the resumed session waits for the deployment that
was asked for, and never sends a second PUT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.azure.helpers import arm_requests
from tests.fakes.processes import kill9, read_json, wait_until

WORKER = """
import sys
from openai import AzureOpenAI
from finetune_wb import FineTuneSession

endpoint, state_path = sys.argv[1], sys.argv[2]
client = AzureOpenAI(azure_endpoint=endpoint, api_key="k", api_version="2024-10-21")
session = FineTuneSession(project="kill-deploy", client=client, state_path=state_path, wandb_mode="disabled")
session.deploy(name="ft-kill", poll_interval=0.05)
print("deployed", flush=True)
"""


def test_kill_mid_deploy_then_resume_deploys_once(azure_env: Any, tmp_path: Path) -> None:
    emu = azure_env
    state_path = tmp_path / "state.json"
    session = FineTuneSession(
        project="kill-deploy", client=emu.azure_client(), state_path=state_path, wandb_mode="disabled"
    )
    session.prepare(load_demo_records()[:40], template=demo_template(), n_train=20, seed=1)
    session.fine_tune(JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=1))
    session.wait()
    ft = session.fine_tuned_model

    emu.core.deployments.provision_seconds = 600.0  # the deployment stays Creating until the test says
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), emu.azure_endpoint, str(state_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                emu.deployment("ft-kill") is not None
                and (read_json(state_path).get("deployment") or {}).get("state") == "requested"
            ),
            proc,
            "the deployment to be asked for",
            timeout=60,
        )
        kill9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert emu.deployment("ft-kill")["properties"]["provisioningState"] == "Creating"
    assert arm_requests(emu, "PUT", "ft-kill") == 1

    emu.core.deployments.ready_at["ft-kill"] = 0.0  # Azure finishes provisioning meanwhile
    resumed = FineTuneSession(
        project="kill-deploy", client=emu.azure_client(), state_path=state_path, wandb_mode="disabled"
    )
    dep = resumed.deploy(poll_interval=0.05)  # the name comes from the state file
    assert (dep.name, dep.model, dep.state, dep.reused) == ("ft-kill", ft, "Succeeded", True)
    assert arm_requests(emu, "PUT", "ft-kill") == 1
    assert resumed.deployment == "ft-kill"
    # and once more: recorded as succeeded, nothing is asked of Azure but a GET
    resumed.deploy()
    assert arm_requests(emu, "PUT", "ft-kill") == 1


def test_two_processes_deploying_one_session_send_one_put(azure_env: Any, tmp_path: Path) -> None:
    """Two processes run the same session's deploy step at once: one deployment, one PUT, both succeed."""
    emu = azure_env
    state_path = tmp_path / "state.json"
    session = FineTuneSession(
        project="kill-deploy", client=emu.azure_client(), state_path=state_path, wandb_mode="disabled"
    )
    session.prepare(load_demo_records()[:40], template=demo_template(), n_train=20, seed=1)
    session.fine_tune(JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=1))
    session.wait()
    ft = session.fine_tuned_model

    emu.core.deployments.provision_seconds = 600.0  # Creating until the test says otherwise
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), emu.azure_endpoint, str(state_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        wait_until(lambda: emu.deployment("ft-kill") is not None, procs[0], "the deployment", timeout=60)
        emu.core.deployments.ready_at["ft-kill"] = 0.0  # Azure finishes provisioning
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and "deployed" in out, err[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    assert arm_requests(emu, "PUT", "ft-kill") == 1
    assert emu.deployment("ft-kill")["properties"]["model"]["name"] == ft
