"""``session.summary()``: a few readable lines (and an HTML table), the state dict only with ``as_dict=True``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from finetune_wb.session.state import SessionState, save_state

BASE = "gpt-4o-mini-2024-07-18"


def test_a_new_session_says_what_to_call_next(tmp_path: Path) -> None:
    session = FineTuneSession("p", state_path=tmp_path / "state.json", wandb_mode="disabled")
    text = session.summary()
    assert isinstance(text, str)
    lines = text.splitlines()
    assert lines[0] == f"FineTuneSession {session.state.session_id} — state {session.state_path}"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "data",
        "validation",
        "job",
        "model",
        "evaluation",
        "W&B",
    ]
    assert "call prepare(" in text and "call validate()" in text and "call fine_tune(" in text
    assert "call evaluate(" in text
    state = session.summary(as_dict=True)
    assert state["state_path"] == str(session.state_path) and state["session_id"] == session.state.session_id


def test_after_the_whole_chain_the_summary_is_short_and_the_dict_has_no_report_text(
    finetune_emulator: Any, tmp_path: Path, no_online_wandb: list[str]
) -> None:
    session = FineTuneSession(
        "t-summary", client=finetune_emulator.client(), state_path=tmp_path / "state.json", poll_interval=0.05
    )
    session.prepare(load_demo_records()[:40], template=demo_template(), n_train=20, seed=1)
    report = session.validate(model=BASE)
    job = session.fine_tune(JobSpec(model=BASE, n_epochs=1))
    job = session.wait()
    result = session.evaluate(baselines=[BASE], evaluators=["exact_match"])
    assert job.fine_tuned_model is not None

    text = session.summary()
    assert len(text) < 2500 and len(text.splitlines()) <= 16
    assert "20 train / 20 test examples (n_train=20, seed 1, stratified)" in text
    assert f"OK: 20 examples, 0 errors, 0 warnings; {report.n_epochs} epochs" in text
    assert f"{job.id} succeeded ({BASE}, 1 epoch) at {finetune_emulator.base_url}" in text
    assert f"model:      {job.fine_tuned_model} (" in text
    ft = result.metrics[job.fine_tuned_model]["exact_match"]
    assert f"{job.fine_tuned_model} (fine-tune): exact_match {ft.value:.3f} [{ft.ci_low:.3f}, " in text
    diff = result.comparison(job.fine_tuned_model, BASE, "exact_match").difference
    assert f"fine-tune vs {BASE}: exact_match {diff:+.3f} (p" in text
    assert "W&B:        project t-summary: dataset, fine-tune, eval" in text
    assert "Validation of" not in text  # the headline, not the report

    state = session.summary(as_dict=True)
    dumped = json.dumps(state)
    assert state["job_id"] == job.id and state["eval_summary"]["metrics"]
    assert state["train_artifact"]["metadata"]["validation"]["n_examples"] == 20
    assert "Validation of" not in dumped  # the report text was there twice (train and test artifacts)
    saved = json.loads(session.state_path.read_text())
    assert "Validation of" in json.dumps(saved)  # the state file itself is unchanged

    table = session._repr_html_()
    assert table.startswith("<div") and table.count("<tr>") == 6 and job.id in table
    assert text._repr_html_() == table


def test_the_summary_reads_saved_states_of_other_shapes(tmp_path: Path) -> None:
    """A failed job, a stale validation, metrics saved as numbers and a server URL holding a key."""
    path = tmp_path / "state.json"
    st = SessionState(
        project="p",
        base_url="https://user:sk-secret@example.test/v1?api-key=sk-secret",
        train_path=str(tmp_path / "train.jsonl"),
        n_train=10,
        n_test=None,
        train_digest="b" * 64,
        validation={"ok": False, "n_examples": 10, "n_errors": 2, "n_warnings": 1, "digest": "a" * 64},
        spec={"model": BASE, "n_epochs": "auto"},
        job_id="ftjob-1",
        job_status="failed",
        eval_summary={
            "metrics": {BASE: {"classification": 0.7}},
            "metric_details": {BASE: {"classification": {"majority_class_rate": 0.793}}},
            "comparisons": [],
            "warnings": ["<b>w</b> one", "two", "three", "four"],
        },
    )
    save_state(st, path)
    session = FineTuneSession.resume(path, wandb_mode="disabled")
    text = session.summary()
    assert "10 train / no test examples" in text
    assert "ERRORS: 10 examples, 2 errors, 1 warning (of an earlier training file: validate again)" in text
    assert f"ftjob-1 failed ({BASE}) at https://example.test/v1" in text and "sk-secret" not in text
    assert "model:      none: the job failed" in text
    assert f"{BASE}: classification 0.700 (majority class 0.793)" in text
    assert "warning: three" in text and "four" not in text and "... and 1 more" in text
    table = session._repr_html_()
    assert "&lt;b&gt;w&lt;/b&gt; one" in table and "<b>w</b>" not in table and "sk-secret" not in table


def test_a_notebook_shows_the_text_not_a_quoted_string(tmp_path: Path) -> None:
    from IPython.lib.pretty import pretty

    session = FineTuneSession("p", state_path=tmp_path / "state.json", wandb_mode="disabled")
    text = session.summary()
    assert pretty(text) == str(text) and "\n" in pretty(text)
    assert "FineTuneSession(project='p'" in repr(session)
