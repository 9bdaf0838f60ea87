"""``finetune-wb emulator`` as a subprocess, and the import weight of the emulator package."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop_signal", "as_background_job"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, True)],
)
def test_cli_prints_the_url_first_serves_and_exits_cleanly(
    tmp_path: Path, stop_signal: int, as_background_job: bool
) -> None:
    """``as_background_job``: started the way a shell starts ``finetune-wb emulator &`` (SIGINT ignored on
    entry), where Python raises no KeyboardInterrupt; ``kill -INT`` must still stop it cleanly."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "finetune_wb",
            "emulator",
            "--port",
            "0",
            "--pace",
            "0.01",
            "--persist-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if as_background_job else None,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
        assert any(m.id == "gpt-4o-mini-2024-07-18" for m in client.models.list())
        client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")
    finally:
        proc.send_signal(stop_signal)
        try:
            _out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert (tmp_path / "state" / "state.json").is_file()
    assert len(json.loads((tmp_path / "state" / "state.json").read_text())["files"]) == 1


def test_cli_reports_a_busy_port() -> None:
    from finetune_wb.emulator import run_emulator

    with run_emulator() as emu:
        proc = subprocess.run(
            [sys.executable, "-m", "finetune_wb", "emulator", "--port", str(emu.port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 1
    assert proc.stdout == "" and "could not start the emulator" in proc.stderr
    assert "port is in use" in proc.stderr and "--port 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_importing_the_emulator_loads_no_server_or_client_packages() -> None:
    code = (
        "import sys, finetune_wb, finetune_wb.emulator, finetune_wb.emulator.pytest_plugin;"
        "finetune_wb.run_emulator; finetune_wb.emulator.ManualClock;"
        "print([m for m in ('starlette', 'uvicorn', 'openai', 'numpy', 'httpx') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    ).stdout
    assert out.strip() == "[]"
