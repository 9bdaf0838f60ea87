"""The W&B runs of one session: one group, config that explains each run, keys that compare across runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.wandb_readback import RunReadback, read_run

BASE = "gpt-4o-mini-2024-07-18"


def _group(back: RunReadback) -> str | None:
    for rec in back.records:
        if rec.get("type") == "run":
            return rec["run"].get("run_group")
    return None


def test_session_runs_share_a_group_and_their_config_explains_them(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    session = FineTuneSession(
        project="t-config", client=finetune_emulator.client(), state_path=tmp_path / "state.json"
    )
    template = demo_template()
    session.prepare(load_demo_records()[:40], template=template, n_train=16, seed=3, stratify=True)
    session.fine_tune(JobSpec(model=BASE, n_epochs=1))
    job = session.wait()
    session.evaluate(baselines=[BASE], evaluators=["exact_match"])
    state = session.state
    runs = {step: read_run(Path(run_dir)) for step, run_dir in state.wandb_runs.items()}
    assert set(runs) == {"dataset", "fine-tune", "eval"}
    assert {step: _group(back) for step, back in runs.items()} == dict.fromkeys(runs, state.session_id)
    for step in ("dataset", "fine-tune"):
        config = runs[step].config
        assert config["template"]["user"] == template.user
        assert config["system_prompt"] == template.system
        assert config["split"]["n_train"] == 16 and config["split"]["seed"] == 3
        assert config["split"]["stratify"] is True
        assert config["split"]["n_test_examples"] == 24
        assert config["validation"]["ok"] is True
        assert config["validation"]["n_examples"] == 16
    eval_run = runs["eval"]
    assert eval_run.config["models"] == {"finetune": job.fine_tuned_model, "baseline": BASE}
    assert "eval/finetune/exact_match" in eval_run.summary
    assert not [k for k in eval_run.summary if str(job.fine_tuned_model) in k or BASE in k]
