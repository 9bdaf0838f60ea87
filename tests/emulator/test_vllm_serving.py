"""Serving through vLLM (emulator/vllm_backend.py, vllm_server.py) against a fake vLLM server started through
the same launcher as ``vllm serve``: adapters loaded after a job, after a restart, once each; chat forwarded;
the child dying or hanging at start; the child stopped with the server, even when the server is killed."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.emulator.runner import Emulator
from finetune_wb.emulator.trl_launch import free_port
from finetune_wb.emulator.vllm_backend import VllmServing
from finetune_wb.emulator.vllm_server import VllmError, VllmServer, vllm_lora_rank
from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples
from tests.fakes.vllm_helpers import FAKE_VLLM_COMMAND, AdapterTrainer, eventually, journal, loads


@pytest.fixture
def vllm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake's journal file (the children inherit the environment)."""
    path = tmp_path / "vllm-journal.jsonl"
    monkeypatch.setenv("FAKE_VLLM_JOURNAL", str(path))
    return path


def make_server(tmp_path: Path, **kw: Any) -> VllmServer:
    kw.setdefault("command", FAKE_VLLM_COMMAND)
    return VllmServer(
        "/models/base", served_name="base-llm", log_path=tmp_path / "vllm.log", startup_timeout_s=30, **kw
    )


def serve(tmp_path: Path, **trainer_kw: Any) -> tuple[Emulator, VllmServing]:
    server = make_server(tmp_path).start()
    serving = VllmServing(AdapterTrainer(tmp_path / "trl", **trainer_kw), server, poll_s=0.05)
    emu = Emulator(persist_dir=tmp_path / "state", trainer=serving).start()
    return emu, serving


@pytest.fixture
def served(tmp_path: Path, vllm_env: Path) -> Iterator[tuple[Emulator, VllmServing]]:
    emu, serving = serve(tmp_path)
    try:
        yield emu, serving
    finally:
        emu.stop()


def run_job(client: Any) -> Any:
    file = client.files.create(
        file=("train.jsonl", io.BytesIO(jsonl(yes_no_examples(10)))), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(model="base-llm", training_file=file.id)
    job = wait_job(client, job.id)
    assert job.status == "succeeded", job
    return job


def ask(client: Any, model: str, **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}], **kw)


def test_a_jobs_adapters_are_loaded_once_and_chat_goes_to_vllm(
    served: tuple[Emulator, VllmServing], vllm_env: Path
) -> None:
    emu, serving = served
    client = emu.client(max_retries=0)
    start = [e for e in journal(vllm_env) if e["event"] == "start"]
    assert len(start) == 1 and start[0]["runtime_lora"] is True
    argv = start[0]["argv"]
    assert argv[:2] == ["serve", "/models/base"] and "--enable-lora" in argv
    assert (
        argv[argv.index("--max-lora-rank") + 1] == "16"
        and argv[argv.index("--served-model-name") + 1] == "base-llm"
    )

    job = run_job(client)
    ckpt = f"{job.fine_tuned_model}:ckpt-step-1"
    eventually(lambda: set(loads(vllm_env)) == {job.fine_tuned_model, ckpt}, "both adapters loaded")

    reply = ask(client, job.fine_tuned_model, temperature=0.7, max_tokens=5)
    assert reply.choices[0].message.content == f"fine-tune of {job.id}"
    assert reply.model == job.fine_tuned_model
    assert ask(client, ckpt).choices[0].message.content == f"checkpoint of {job.id}"
    assert ask(client, "base-llm").choices[0].message.content == "base-llm answers"
    chats = [e for e in journal(vllm_env) if e["event"] == "chat"]
    assert [c["model"] for c in chats] == [job.fine_tuned_model, ckpt, "base-llm"]
    assert chats[0]["body"]["temperature"] == 0.7 and chats[0]["body"]["max_tokens"] == 5  # passed as sent

    serving.sync()  # again: nothing new
    assert serving.server.load_adapter(job.fine_tuned_model, job.local_adapter["path"]) is False  # type: ignore[attr-defined]
    assert sorted(loads(vllm_env)) == sorted([job.fine_tuned_model, ckpt])  # once each

    with pytest.raises(openai.NotFoundError):  # still the emulator's 404 for a model nobody has
        ask(client, "ft:base-llm:org::nothere")


def test_a_restart_loads_the_kept_adapters_into_the_new_vllm_once(tmp_path: Path, vllm_env: Path) -> None:
    emu, _ = serve(tmp_path)
    try:
        job = run_job(emu.client(max_retries=0))
        eventually(lambda: len(loads(vllm_env)) == 2, "the first vLLM's loads")
    finally:
        emu.stop()
    first = journal(vllm_env)
    assert first[-1]["event"] == "stop"  # the child was stopped with the server

    emu, _ = serve(tmp_path)  # same state directory, a new vLLM child
    try:
        pid = [e["pid"] for e in journal(vllm_env) if e["event"] == "start"][-1]
        again = [e["name"] for e in journal(vllm_env) if e["event"] == "load" and e["pid"] == pid]
        assert sorted(again) == sorted(
            [job.fine_tuned_model, f"{job.fine_tuned_model}:ckpt-step-1"]
        )  # at start
        time.sleep(0.3)  # several watcher rounds
        client = emu.client(max_retries=0)
        assert ask(client, job.fine_tuned_model).choices[0].message.content == f"fine-tune of {job.id}"
        assert len([e for e in journal(vllm_env) if e["event"] == "load" and e["pid"] == pid]) == 2
    finally:
        emu.stop()


def test_attaching_to_a_running_vllm_loads_nothing_it_holds(tmp_path: Path, vllm_env: Path) -> None:
    port = free_port("127.0.0.1")
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    cmd = [
        *FAKE_VLLM_COMMAND,
        "serve",
        "/models/base",
        "--port",
        str(port),
        "--served-model-name",
        "base-llm",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first = make_server(tmp_path, url=f"http://127.0.0.1:{port}/v1").start()
        adapter = tmp_path / "a"
        from tests.fakes.vllm_helpers import write_adapter

        write_adapter(adapter, "a")
        assert first.load_adapter("ft:base-llm:org::aaaa", str(adapter)) is True
        first.close()
        assert proc.poll() is None  # an attached vLLM is not ours to stop

        second = make_server(tmp_path, url=f"http://127.0.0.1:{port}").start()
        assert second.loaded == {"ft:base-llm:org::aaaa": str(adapter)}  # learnt from GET /v1/models
        second.loaded.clear()  # even without that, vLLM's "has already been loaded" is no failure
        assert second.load_adapter("ft:base-llm:org::aaaa", str(adapter)) is False
        assert loads(vllm_env) == ["ft:base-llm:org::aaaa"]
        second.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_vllm_without_runtime_lora_loading_is_refused_with_the_fix(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ALLOW_RUNTIME_LORA_UPDATING"}
    cmd = [*FAKE_VLLM_COMMAND, "serve", "/models/base", "--port", str(port), "--served-model-name", "other"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server = VllmServer("/models/base", served_name="other", url=f"http://127.0.0.1:{port}")
        with pytest.raises(VllmError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora"):
            server.start()
        with pytest.raises(
            VllmError, match=r"serves \['other'\], not 'base-llm': start it with --served-model-name"
        ):
            make_server(tmp_path, url=f"http://127.0.0.1:{port}").start()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_child_that_dies_at_start_is_a_clear_error_with_its_stderr(
    tmp_path: Path, vllm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_FAIL_AT_START", "No available memory for the cache blocks.")
    server = make_server(tmp_path)
    with pytest.raises(VllmError) as err:
        server.start()
    text = str(err.value)
    assert "exited with status 1 before it was ready" in text
    monkeypatch.setenv("FAKE_VLLM_FAIL_AT_START", "Model architectures ['Nope'] are not supported.")
    with pytest.raises(VllmError) as again:
        make_server(tmp_path).start()  # the same log file, appended to: only this start's lines are quoted
    assert "are not supported" in str(again.value) and "cache blocks" not in str(again.value)
    assert (
        "ValueError: No available memory for the cache blocks." in text and str(tmp_path / "vllm.log") in text
    )


def test_a_child_that_never_gets_healthy_times_out_and_is_stopped(
    tmp_path: Path, vllm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_STARTUP_DELAY_S", "60")
    server = make_server(tmp_path)
    server.startup_timeout_s = 1.0
    started = time.monotonic()
    with pytest.raises(VllmError, match=r"was not ready in time .*raise --vllm-startup-timeout"):
        server.start()
    assert time.monotonic() - started < 15
    assert server.proc is None  # stopped, not left behind


def test_the_child_is_stopped_with_the_server(served: tuple[Emulator, VllmServing], vllm_env: Path) -> None:
    emu, serving = served
    proc = serving.server.proc
    assert proc is not None and proc.poll() is None
    emu.stop()
    assert proc.poll() is not None and serving.trainer.closed  # type: ignore[attr-defined]
    assert journal(vllm_env)[-1]["event"] == "stop"


def test_the_child_stops_when_the_server_is_killed(tmp_path: Path, vllm_env: Path) -> None:
    script = (
        "import sys, time\n"
        "from finetune_wb.emulator.vllm_server import VllmServer\n"
        f"s = VllmServer('/models/base', served_name='base-llm', command={FAKE_VLLM_COMMAND!r}).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        parent.send_signal(signal.SIGKILL)  # no cleanup of any kind runs in the server
        parent.wait(timeout=20)
        eventually(lambda: journal(vllm_env)[-1]["event"] == "stop", "the orphaned child to stop", timeout=20)
        eventually(lambda: not _alive(child), "the child process to exit", timeout=20)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(")")[-1].split()[0] == "Z")  # a zombie has exited


def test_a_full_fine_tune_is_answered_by_the_trainer_not_vllm(tmp_path: Path, vllm_env: Path) -> None:
    emu, _ = serve(tmp_path, full=True)
    try:
        client = emu.client(max_retries=0)
        job = run_job(client)
        assert ask(client, job.fine_tuned_model).choices[0].message.content == (
            f"transformers answers for {job.fine_tuned_model}"
        )
        time.sleep(0.2)
        assert loads(vllm_env) == []
        assert (
            ask(client, "base-llm").choices[0].message.content == "base-llm answers"
        )  # the base stays on vLLM
    finally:
        emu.stop()


def test_an_adapter_vllm_refuses_answers_with_why_and_what_to_do(tmp_path: Path, vllm_env: Path) -> None:
    emu, serving = serve(tmp_path, rank=64)  # above the child's --max-lora-rank 16
    try:
        client = emu.client(max_retries=0)
        job = run_job(client)
        eventually(lambda: job.fine_tuned_model in serving.failed, "the refused load")
        with pytest.raises(openai.InternalServerError) as err:
            ask(client, job.fine_tuned_model)
        message = str(err.value)
        assert (
            "LoRA rank 64 is greater than max_lora_rank 16" in message and "--vllm-max-lora-rank" in message
        )
    finally:
        emu.stop()


def test_a_deleted_model_is_unloaded(served: tuple[Emulator, VllmServing], vllm_env: Path) -> None:
    emu, _ = served
    client = emu.client(max_retries=0)
    job = run_job(client)
    eventually(lambda: len(loads(vllm_env)) == 2, "the loads")
    client.models.delete(job.fine_tuned_model)
    eventually(
        lambda: [e["name"] for e in journal(vllm_env) if e["event"] == "unload"] == [job.fine_tuned_model],
        "the unload",
    )
    with pytest.raises(openai.NotFoundError):
        ask(client, job.fine_tuned_model)


def test_concurrent_requests_reach_vllm_together(
    tmp_path: Path, vllm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_CHAT_DELAY_S", "0.5")
    emu, _ = serve(tmp_path)
    try:
        client = emu.client(max_retries=0)
        replies: list[str] = []
        threads = [
            threading.Thread(
                target=lambda: replies.append(str(ask(client, "base-llm").choices[0].message.content))
            )
            for _ in range(8)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        elapsed = time.monotonic() - started
        assert replies == ["base-llm answers"] * 8
        assert max(e["max_in_flight"] for e in journal(vllm_env) if e["event"] == "chat") >= 4
        assert elapsed < 3.0  # 8 x 0.5 s one at a time would be 4 s
    finally:
        emu.stop()


def test_vllm_lora_rank() -> None:
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 16, 17, 64, 300)] == [1, 8, 8, 16, 32, 64, 320]
    with pytest.raises(VllmError, match="up to 512"):
        vllm_lora_rank(1024)


def test_an_adapter_vllm_lost_is_loaded_again_on_the_next_request(
    served: tuple[Emulator, VllmServing], vllm_env: Path
) -> None:
    import httpx

    emu, serving = served
    client = emu.client(max_retries=0)
    job = run_job(client)
    eventually(lambda: len(loads(vllm_env)) == 2, "the loads")
    httpx.post(f"{serving.server.url}/v1/unload_lora_adapter", json={"lora_name": job.fine_tuned_model})
    assert ask(client, job.fine_tuned_model).choices[0].message.content == f"fine-tune of {job.id}"
    assert loads(vllm_env).count(job.fine_tuned_model) == 2


def test_a_vllm_that_died_while_serving_answers_503_with_its_exit(
    served: tuple[Emulator, VllmServing], vllm_env: Path
) -> None:
    emu, serving = served
    proc = serving.server.proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with pytest.raises(openai.InternalServerError) as err:
        ask(emu.client(max_retries=0), "base-llm")
    assert err.value.status_code == 503
    assert "exited with status -9" in str(err.value) and "Restart finetune-wb serve" in str(err.value)
