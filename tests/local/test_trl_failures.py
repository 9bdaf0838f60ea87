"""Failures of real TRL jobs: out of memory mid-training, models that do not load, files the template cannot
render. Each fails the job with its reason in ``error`` and in an error event; the server keeps serving."""

from __future__ import annotations

import io
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.emulator.runner import Emulator
from finetune_wb.emulator.trl_trainer import TrlTrainer
from tests.local.helpers import poll_until, wait_for
from tests.local.test_trl_jobs import _upload
from tests.local.tiny import toy_examples

#: put on the worker's PYTHONPATH, this makes the third training step raise what torch raises when a CUDA
#: allocation fails; the product code has no hook for it
OOM_SITECUSTOMIZE = textwrap.dedent(
    """
    import os

    import torch
    import transformers

    _step = transformers.Trainer.training_step
    _calls = [0]

    def training_step(self, *args, **kwargs):
        _calls[0] += 1
        if _calls[0] == 3 and os.environ.get("RANK", "0") == os.environ.get("OOM_TEST_RANK", "0"):
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB"
            )
        return _step(self, *args, **kwargs)

    transformers.Trainer.training_step = training_step
    """
)

HP = {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 1.0}


def fault_site(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Put the out-of-memory ``sitecustomize`` on the PYTHONPATH training processes inherit; return the old
    PYTHONPATH (set it back and the next training process runs without the fault)."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(OOM_SITECUSTOMIZE, encoding="utf-8")
    pythonpath = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(folder), pythonpath) if p))
    return pythonpath


def _sft_job(client: Any, rows: list[dict[str, Any]], **kw: Any) -> Any:
    return client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=_upload(client, rows),
        method={"type": "supervised", "supervised": {"hyperparameters": HP}},
        **kw,
    )


def _error_events(client: Any, job_id: str) -> list[str]:
    return [
        e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=100).data if e.level == "error"
    ]


def test_cuda_out_of_memory_fails_the_job_and_the_next_job_trains(
    trl_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pythonpath = fault_site(tmp_path / "oom-site", monkeypatch)
    client = trl_emulator.client()
    trainer: Any = trl_emulator.core.trainer

    job = _sft_job(client, toy_examples(1))  # 20 examples, batch 2: 10 steps; step 3 runs out of memory
    job = wait_for(client, job.id, until=lambda j: j.id in trainer.procs or j.status == "failed", timeout=30)
    proc = trainer.procs.get(job.id)
    job = wait_for(client, job.id, timeout=90)
    assert job.status == "failed", job
    assert job.error.code == "out_of_memory" and job.error.param is None
    assert job.error.message.startswith(
        "The job failed: The GPU ran out of memory at training step 3 of 10 fine-tuning "
        f"{trainer.model} (batch_size 2, max length 1024 tokens, full fine-tuning): CUDA out of memory. "
        "Tried to allocate 20.00 GiB"
    ), job.error.message
    assert "smaller batch_size (e.g. 1)" in job.error.message and "serve without --full" in job.error.message
    assert "--max-length" in job.error.message and "--gradient-checkpointing" in job.error.message
    assert _error_events(client, job.id) == [job.error.message]
    steps = [
        e.data["step"] for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"
    ]
    assert sorted(steps) == [1, 2]  # the steps before it ran out were reported
    assert job.fine_tuned_model is None
    if proc is not None:  # the training process is gone: what it held on the GPU is free
        assert proc.wait(timeout=20) is not None
    poll_until(lambda: job.id not in trainer.procs, "the server let go of the job's process")
    assert "OutOfMemoryError" in (Path(trainer.output_dir) / job.id / "stderr.log").read_text()

    # the server still answers, and a next job (without the fault) trains to the end
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"
    again = wait_for(client, _sft_job(client, toy_examples(1)).id, timeout=120)
    assert again.status == "succeeded", again.error
    assert again.fine_tuned_model and again.trained_tokens

    # a restart on the same directory keeps both jobs as they ended, their events and their files
    persist = trl_emulator.core.store.root
    files = {f.id for f in client.files.list().data}
    trl_emulator.stop()
    with Emulator(persist_dir=persist, trainer=TrlTrainer(trainer.model, served_name="tiny-llama")) as emu:
        c2 = emu.client()
        failed = c2.fine_tuning.jobs.retrieve(job.id)
        assert failed.status == "failed" and failed.error.code == "out_of_memory"
        assert failed.error.message == job.error.message and _error_events(c2, job.id) == [job.error.message]
        assert c2.fine_tuning.jobs.retrieve(again.id).fine_tuned_model == again.fine_tuned_model
        assert {f.id for f in c2.files.list().data} == files


def test_files_the_template_cannot_render_fail_their_jobs_naming_the_line(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    rows = toy_examples(1)
    text = "".join(json.dumps(r) + "\n" for r in rows[:3]) + "{oops\n"
    bad_json = client.files.create(file=("bad.jsonl", io.BytesIO(text.encode())), purpose="fine-tune").id
    no_answer = [*rows[:3], {"messages": [{"role": "user", "content": "word: apple"}]}]
    bad_valid = [rows[0], {"messages": [{"role": "critic", "content": "x"}, *rows[1]["messages"]]}]
    dpo_bad = [
        {
            "input": {"messages": [{"role": "critic", "content": "word: apple"}]},
            "preferred_output": [{"role": "assistant", "content": "Yes"}],
            "non_preferred_output": [{"role": "assistant", "content": "No"}],
        }
    ]
    jobs = {
        "json": client.fine_tuning.jobs.create(model="tiny-llama", training_file=bad_json),
        "no_answer": _sft_job(client, no_answer),
        "valid": _sft_job(client, rows, validation_file=_upload(client, bad_valid)),
        "dpo": client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=_upload(client, dpo_bad),
            method={"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1}}},
        ),
    }
    done = {k: wait_for(client, j.id, timeout=120) for k, j in jobs.items()}
    expected = {
        "json": ("invalid_training_file", "training_file", "training file line 4: not valid JSON"),
        "no_answer": ("invalid_training_file", "training_file", "training file line 4: no assistant message"),
        "valid": (
            "invalid_validation_file",
            "validation_file",
            "validation file line 2: the model's chat template cannot render this example: unsupported role: "
            "critic",
        ),
        "dpo": (
            "invalid_training_file",
            "training_file",
            "training file line 1: the model's chat template cannot render this example: unsupported role: "
            "critic",
        ),
    }
    for key, (code, param, text) in expected.items():
        job = done[key]
        assert job.status == "failed" and job.error.code == code and job.error.param == param, (
            key,
            job.error,
        )
        assert job.error.message.startswith(f"The job failed: {text}"), (key, job.error.message)
        assert _error_events(client, job.id) == [job.error.message]
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"


def test_hub_id_that_cannot_be_downloaded_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here: the id is not in the cache either
    missing = "finetune-wb-tests/no-such-model-19b"
    trainer = TrlTrainer(missing, served_name="hub-model")
    with Emulator(persist_dir=tmp_path / "state", trainer=trainer) as emu:
        client = emu.client()
        job = client.fine_tuning.jobs.create(
            model="hub-model", training_file=_upload(client, toy_examples(1))
        )
        job = wait_for(client, job.id, timeout=90)
        assert job.status == "failed" and job.error.code == "model_not_loadable", job.error
        assert job.error.message.startswith(
            f"The job failed: The base model {missing!r} could not be loaded ("
        )
        assert (
            "Pass a Hugging Face causal LM id or a local directory holding config.json" in job.error.message
        )
        assert _error_events(client, job.id) == [job.error.message]
        assert client.models.retrieve("hub-model").id == "hub-model"  # still serving


def test_model_the_server_does_not_offer_is_a_400_and_no_job(trl_emulator: Emulator) -> None:
    client = trl_emulator.client()
    train = _upload(client, toy_examples(1))
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="Qwen/Qwen2.5-7B-Instruct", training_file=train)
    assert info.value.code == "model_not_available" and info.value.param == "model"
    assert "Model 'Qwen/Qwen2.5-7B-Instruct' is not available for fine-tuning" in info.value.message
    assert "Fine-tunable models: tiny-llama" in info.value.message
    assert client.fine_tuning.jobs.list().data == []
