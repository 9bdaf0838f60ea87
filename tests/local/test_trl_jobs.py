"""Real TRL training behind the emulator's API: the observable job, its models, failures, cancel, restarts."""

from __future__ import annotations

import base64
import io
import json
import signal
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.emulator.runner import Emulator
from finetune_wb.emulator.trl_trainer import TrlTrainer
from tests.local.helpers import TOY_HP, ask, wait_for
from tests.local.tiny import FRUITS, OTHERS, toy_examples


def _upload(client: Any, rows: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return str(client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune").id)


def _accuracy(client: Any, model: str) -> float:
    right = sum(ask(client, model, w) == "Yes" for w in FRUITS) + sum(
        ask(client, model, w) == "No" for w in OTHERS
    )
    return right / (len(FRUITS) + len(OTHERS))


def test_sft_job_trains_checkpoints_and_answers(trl_emulator: Emulator, tmp_path: Path) -> None:
    client = trl_emulator.client()
    train = _upload(client, toy_examples(2))
    valid = _upload(client, toy_examples(1)[:8])
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=train,
        validation_file=valid,
        suffix="toy",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": TOY_HP}},
    )
    job = wait_for(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model.startswith("ft:tiny-llama:") and ":toy:" in job.fine_tuned_model
    assert job.trained_tokens and job.trained_tokens > 0
    assert job.hyperparameters.n_epochs == 8 and job.hyperparameters.batch_size == 4

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    metrics = sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])
    assert [m["step"] for m in metrics] == list(range(1, 81))  # one event per step
    assert all({"train_loss", "train_mean_token_accuracy", "learning_rate"} <= set(m) for m in metrics)
    first, last = sum(m["train_loss"] for m in metrics[:5]), sum(m["train_loss"] for m in metrics[-5:])
    assert last < first / 3, (first, last)  # the loss really goes down
    assert "valid_loss" in metrics[-1]
    messages = [e.message for e in events]
    assert "Epoch 1 finished at step 10" in messages and "The job has successfully completed" in messages

    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in ckpts) == [10, 20, 30, 40, 50, 60, 70, 80]  # one per epoch
    assert all(c.fine_tuned_model_checkpoint.endswith(f":ckpt-step-{c.step_number}") for c in ckpts)
    assert "full_valid_loss" in ckpts[0].metrics.model_dump()

    csv = base64.b64decode(client.files.content(job.result_files[0]).content).decode()
    lines = csv.splitlines()
    assert lines[0].startswith("step,train_loss,train_accuracy") and len(lines) == 81

    adapter = job.model_dump()["local_adapter"]
    assert Path(adapter["path"], "config.json").is_file() and adapter["kind"] == "full"

    # the fine-tune learned the task; its untrained base did not; a checkpoint model answers too
    assert _accuracy(client, job.fine_tuned_model) >= 0.8
    assert _accuracy(client, "tiny-llama") <= 0.5
    assert ask(client, ckpts[0].fine_tuned_model_checkpoint, "apple")
    listed = {m.id for m in client.models.list().data}
    assert {"tiny-llama", job.fine_tuned_model} <= listed

    # restart on the same state directory: files, jobs and the model are kept
    before = ask(client, job.fine_tuned_model, "apple")
    persist = trl_emulator.core.store.root
    trl_emulator.stop()
    trainer = TrlTrainer(
        trl_emulator.core.trainer.model, served_name="tiny-llama", full=True, max_new_tokens=4
    )  # type: ignore[attr-defined]
    with Emulator(persist_dir=persist, trainer=trainer) as again:
        c2 = again.client()
        assert c2.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
        assert {f.id for f in c2.files.list().data} >= {train, valid}
        assert ask(c2, job.fine_tuned_model, "apple") == before == "Yes"


def test_unknown_base_model_is_refused_at_creation(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    train = _upload(client, toy_examples(1))
    with pytest.raises(openai.BadRequestError, match="tiny-llama"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train)


def test_base_model_chats_with_tools_through_its_template(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    reply = client.chat.completions.create(
        model="tiny-llama",
        messages=[{"role": "user", "content": "weather in Paris"}],
        tools=tools,
        max_tokens=3,
    )
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert isinstance(choice.message.content, str) or choice.message.tool_calls
    assert reply.usage.completion_tokens <= 3


def test_dataset_the_template_cannot_render_fails_the_job(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    rows = toy_examples(1)
    rows[3] = {"messages": [{"role": "developer", "content": "be brief"}, *rows[3]["messages"]]}
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=_upload(client, rows))
    job = wait_for(client, job.id, timeout=60)
    assert job.status == "failed"
    assert job.error.code == "invalid_training_file" and job.error.param == "training_file"
    assert "training file line 4" in job.error.message and "unsupported role: developer" in job.error.message
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert any(e.level == "error" and "line 4" in e.message for e in events)
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"  # the server is fine


def test_model_that_does_not_load_fails_the_job(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    trainer = TrlTrainer(str(tmp_path / "broken"), served_name="broken")
    with Emulator(persist_dir=tmp_path / "state", trainer=trainer) as emu:
        client = emu.client()
        job = client.fine_tuning.jobs.create(model="broken", training_file=_upload(client, toy_examples(1)))
        job = wait_for(client, job.id, timeout=60)
        assert job.status == "failed" and job.error.code == "model_not_loadable", job.error
        assert str(tmp_path / "broken") in job.error.message


def _long_job(client: Any) -> Any:
    hp = {"n_epochs": 50, "batch_size": 1, "learning_rate_multiplier": 1.0}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, toy_examples(1)),
        method={"type": "supervised", "supervised": {"hyperparameters": hp}},
    )
    return wait_for(client, job.id, until=lambda j: j.status == "running" or j.status == "failed", timeout=60)


def _wait_state(pid: int, ok: Any, timeout: float = 10.0) -> None:
    """Wait until the process state letter in /proc/PID/stat satisfies ``ok`` (T: stopped)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if ok(state):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still in state {state}")


def test_pause_resume_and_cancel_act_on_the_training_process(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    job = _long_job(client)
    assert job.status == "running"
    proc = trl_emulator.core.trainer.procs[job.id]  # type: ignore[attr-defined]

    # pause stops the training process (SIGSTOP), resume continues it
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    _wait_state(proc.pid, lambda s: s == "T")
    assert client.fine_tuning.jobs.resume(job.id).status == "running"
    _wait_state(proc.pid, lambda s: s != "T")

    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    proc.wait(timeout=20)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "cancelled" and job.fine_tuned_model is None


def test_killed_trainer_fails_the_job_then_restart_fails_the_interrupted_one(
    trl_emulator: Emulator, tmp_path: Path
) -> None:
    client = trl_emulator.client()
    job = _long_job(client)
    proc = trl_emulator.core.trainer.procs[job.id]  # type: ignore[attr-defined]
    proc.send_signal(signal.SIGKILL)  # kill -9 of the worker: no cleanup runs
    job = wait_for(client, job.id, timeout=30)
    assert job.status == "failed" and job.error.code == "trainer_crashed"
    assert "killed by signal 9" in job.error.message and job.id in job.error.message
    assert client.models.retrieve("tiny-llama")  # the server still answers

    interrupted = _long_job(client)
    persist = trl_emulator.core.store.root
    trl_emulator.stop()  # the server goes away while the job trains
    trainer = TrlTrainer(trl_emulator.core.trainer.model, served_name="tiny-llama")
    with Emulator(persist_dir=persist, trainer=trainer) as again:
        after = again.client().fine_tuning.jobs.retrieve(interrupted.id)
        assert after.status == "failed" and after.error.code == "server_restarted"
        assert "Create the job again" in after.error.message


def test_dpo_job_trains_a_lora_adapter_on_openai_preference_data(tiny_model: Path, tmp_path: Path) -> None:
    trainer = TrlTrainer(str(tiny_model), served_name="tiny-llama", lora_r=4, max_new_tokens=4)
    with Emulator(persist_dir=tmp_path / "state", trainer=trainer) as emu:
        _dpo_job(emu.client())


def _dpo_job(client: Any) -> None:
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": f"word: {w}"}]},
            "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": bad}],
        }
        for w, good, bad in [(f, "Yes", "No") for f in FRUITS[:4]] + [(o, "No", "Yes") for o in OTHERS[:4]]
    ]
    hp = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 5.0, "beta": 0.2}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, rows),
        method={"type": "dpo", "dpo": {"hyperparameters": hp}},
    )
    job = wait_for(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.method.dpo.hyperparameters.beta == 0.2
    steps = [
        e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=50).data if e.type == "metrics"
    ]
    assert len(steps) == 4 and all("train_loss" in s and "learning_rate" in s for s in steps)
    adapter = job.model_dump()["local_adapter"]
    assert adapter["kind"] == "lora" and Path(adapter["path"], "adapter_config.json").is_file()
    assert isinstance(ask(client, job.fine_tuned_model, "apple"), str)  # served with the adapter applied

    # syncing the job to W&B logs the adapter as a `lora` artifact naming its base model
    from finetune_wb.tracking.artifacts import recorded_artifacts
    from finetune_wb.tracking.sync import sync_job

    assert sync_job(job.id, client=client, project="t-lora").outcome == "synced"
    (ref,) = [r for r in recorded_artifacts("lora") if r.metadata["job_id"] == job.id]
    assert ref.metadata["base_model"] == adapter["base_model"] and ref.metadata["files_included"] is True
    assert ref.metadata["fine_tuned_model"] == job.fine_tuned_model
