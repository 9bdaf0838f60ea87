"""`finetune-wb run` with an [azure] section: fine-tune, deploy, evaluate by deployment name, undeploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.config.model import RunConfig
from finetune_wb.errors import ConfigError
from tests.azure.helpers import arm_requests

CONFIG = """
project = "t-run-azure"
wandb_mode = "disabled"

[data]
demo = true
limit = 40

[split]
n_train = 20
seed = 1

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 1
training_type = "developerTier"

[evaluation]
baselines = ["gpt-4o-mini-2024-07-18"]
max_tokens = 5

[azure]
deployment = "run-dep"
{extra}
"""


def _config(tmp_path: Path, extra: str = "undeploy = true") -> Path:
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return path


@pytest.fixture
def azure_run_env(azure_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure_env.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    return azure_env


@pytest.mark.parametrize("v1", [False, True])
def test_run_with_azure_section(
    azure_run_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], v1: bool
) -> None:
    emu = azure_run_env
    extra = "undeploy = true\nv1 = true" if v1 else "undeploy = true"
    code = main(["run", str(_config(tmp_path, extra)), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    ft = result["fine_tuned_model"]
    assert ".ft-" in ft and emu.job(result["job_id"])["trainingType"] == "developerTier"
    dep = result["deployment"]
    assert (dep["name"], dep["model"], dep["sku"], dep["state"]) == (
        "run-dep",
        ft,
        "DeveloperTier",
        "Deleted",
    )
    metrics = result["evaluation"]["metrics"]
    label = f"run-dep ({ft})"
    assert metrics[label]["exact_match"] > metrics["gpt-4o-mini-2024-07-18"]["exact_match"]
    assert "deployment run-dep" in err and "no hosting fee" in err
    assert "(+ no hosting fee: Developer tier)" in err  # the cost estimate names the deployment's part
    assert emu.deployment("run-dep") is None and arm_requests(emu, "PUT", "run-dep") == 1


def test_rerun_reuses_job_and_deployment(
    azure_run_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = azure_run_env
    config = _config(tmp_path, extra="")  # keep the deployment
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    assert main(["run", str(config)]) == 0
    _, err = capsys.readouterr()
    assert "resuming session" in err and "(re-used)" in err
    assert arm_requests(emu, "PUT", "run-dep") == 1
    assert sum(1 for e in emu.journal if e.method == "POST" and e.path == "/v1/fine_tuning/jobs") == 1


def test_run_on_the_emulator_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(_config(tmp_path)), "--emulator", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["deployment"]["state"] == "Deleted"


def test_hosting_in_the_cost_estimate() -> None:
    from finetune_wb.config.model import AzureConfig
    from finetune_wb.session.azure_run import hosting_note

    assert hosting_note("gpt-4o-mini-2024-07-18", AzureConfig(sku="standard")) == (
        " + hosting $1.70/hour while deployed (standard)"
    )


def test_azure_section_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"azure\.sku"):
        RunConfig.from_dict({"data": {"demo": True}, "azure": {"sku": "premium"}})
    with pytest.raises(ConfigError, match=r"azure\.api_key"):
        RunConfig.from_dict({"data": {"demo": True}, "azure": {"api_key": "secret"}})
