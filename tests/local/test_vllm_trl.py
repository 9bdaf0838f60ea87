"""``finetune-wb serve --trainer trl --serve-with vllm`` with the real TRL trainer and the fake vLLM of
tests/fakes (launched through ``--vllm-command``, as ``vllm serve`` would be): a LoRA job's real PEFT
adapter and its checkpoint are loaded into vLLM under their ``ft:`` ids, chat goes through vLLM, the child
stops with the server, and a restart loads the kept adapters into the new child once each."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.vllm_helpers import FAKE_VLLM_COMMAND, eventually, journal
from tests.local.helpers import wait_for
from tests.local.tiny import toy_examples, write_jsonl


def start_serve(tiny_model: Path, out: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable, "-m", "finetune_wb", "serve", "--trainer", "trl", "--model", str(tiny_model),
        "--name", "tiny-llama", "--port", "0", "--output-dir", str(out), "--max-new-tokens", "4",
        "--serve-with", "vllm", "--vllm-command", shlex.join(FAKE_VLLM_COMMAND), "--vllm-startup-timeout", "60",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"serve did not start: {url!r} {proc.stderr.read()}")  # type: ignore[union-attr]
    assert proc.stdout.readline().strip() == "model: tiny-llama"  # type: ignore[union-attr]
    return proc, url


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def loads_by(path: Path, pid: int) -> list[dict[str, Any]]:
    return [e for e in journal(path) if e["event"] == "load" and e["pid"] == pid]


def test_a_real_lora_job_is_served_through_vllm_and_reloaded_after_a_restart(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "vllm-journal.jsonl"
    monkeypatch.setenv("FAKE_VLLM_JOURNAL", str(log))
    out = tmp_path / "serve"
    proc, url = start_serve(tiny_model, out)
    try:
        start = journal(log)[0]
        assert start["event"] == "start" and start["runtime_lora"] is True
        assert start["argv"][:2] == ["serve", str(tiny_model)]
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
        train = client.files.create(
            file=write_jsonl(tmp_path / "t.jsonl", toy_examples(1)), purpose="fine-tune"
        )
        job = client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=train.id, hyperparameters={"n_epochs": 1, "batch_size": 8}
        )
        job = wait_for(client, job.id)
        assert job.status == "succeeded", job.error
        ft, ckpt = job.fine_tuned_model, f"{job.fine_tuned_model}:ckpt-step-3"
        eventually(lambda: len(loads_by(log, start["pid"])) == 2, "both loads", timeout=20)
        got = {e["name"]: e["path"] for e in loads_by(log, start["pid"])}
        assert got[ft] == str(out / "trl" / job.id / "final") and ckpt in got
        config = json.loads((Path(got[ft]) / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and config["r"] == 16  # the real PEFT adapter

        reply = client.chat.completions.create(model=ft, messages=[{"role": "user", "content": "word: plum"}])
        assert reply.choices[0].message.content == f"{ft} answers"  # the fake vLLM answered, with the adapter
        base = client.chat.completions.create(
            model="tiny-llama", messages=[{"role": "user", "content": "hi"}]
        )
        assert base.choices[0].message.content == "tiny-llama answers"
    finally:
        err = stop(proc)
    assert journal(log)[-1]["event"] == "stop", err  # the vLLM child stopped with the server

    proc, url = start_serve(tiny_model, out)  # a restart on the same output directory
    try:
        pid = [e for e in journal(log) if e["event"] == "start"][-1]["pid"]
        assert sorted(e["name"] for e in loads_by(log, pid)) == sorted([ft, ckpt])  # loaded before serving
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
        assert (
            client.chat.completions.create(model=ckpt, messages=[{"role": "user", "content": "word: plum"}])
            .choices[0]
            .message.content
            == f"{ckpt} answers"
        )
        assert len(loads_by(log, pid)) == 2  # once each
    finally:
        stop(proc)
