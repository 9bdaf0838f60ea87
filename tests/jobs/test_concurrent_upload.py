"""Two ``finetune-wb upload`` processes of one file at once: one file on the server, both print its id.

The emulator runs in the test process (its journal counts the uploads of both); a slow upload (latency on
``POST /v1/files``) keeps the first process inside its upload while the second one looks the file up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.data.jsonl import write_jsonl
from finetune_wb.emulator import run_emulator
from finetune_wb.errors import UploadError
from finetune_wb.jobs.registry import claim

TIMEOUT = 120.0

# Start both CLIs at once: each waits, after its imports, for the test's start line.
LAUNCHER = """
import os, sys, time
ready, start_line = sys.argv[1], sys.argv[2]
from finetune_wb.cli import main
import finetune_wb.jobs.upload, finetune_wb.tracking.artifacts, openai  # the imports, before the start line
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(start_line) and time.monotonic() < deadline:
    time.sleep(0.005)
sys.exit(main(sys.argv[3:]))
"""


def _posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status < 400)


def _two_uploads(tmp_path: Path, emu: Any, train: Path) -> list[str]:
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    start_line = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    env = {**os.environ, "OPENAI_BASE_URL": emu.base_url, "OPENAI_API_KEY": "sk-test"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(launcher), str(r), str(start_line), "upload", str(train), "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for r in ready
    ]
    deadline = time.monotonic() + TIMEOUT
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    start_line.touch()
    ids = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError("an upload did not finish in time") from None
        assert proc.returncode == 0, f"upload exited {proc.returncode}:\n{err[-3000:]}"
        ids.append(out.strip().splitlines()[-1])
    return ids


def test_two_uploads_of_one_file_at_once_upload_it_once(tmp_path: Path) -> None:
    from finetune_wb.data.build import build_examples

    train = write_jsonl(
        build_examples(load_demo_records()[:30], template=demo_template()), tmp_path / "t.jsonl"
    )
    with run_emulator(pace=0.01) as emu:
        emu.inject_latency(1.0, path="/v1/files", method="POST")  # the first upload is still in flight
        first, second = _two_uploads(tmp_path, emu, train)
        assert first.startswith("file-") and first == second
        assert _posts(emu, "/v1/files") == 1


def test_a_claim_held_too_long_says_who_holds_it(tmp_path: Path) -> None:
    """A second process that gives up waiting for the claim names the lock, the holder's pid and what to do."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from finetune_wb.jobs.registry import claim\n"
            "with claim('ab' * 32, purpose='fine-tune', base_url='http://u:secret@127.0.0.1:9/v1'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        try:
            with claim("ab" * 32, purpose="fine-tune", base_url="http://127.0.0.1:9/v1", timeout=0.5):
                raise AssertionError("the claim was taken while another process held it")
        except UploadError as exc:
            message = str(exc)
        assert time.monotonic() - started < 10
        assert f"pid {holder.pid}" in message and "sha256 abababababab" in message
        assert "upload-" in message and "Wait for that process to finish" in message
        assert "secret" not in message
        # other content is not held up
        with claim("cd" * 32, purpose="fine-tune", base_url="http://127.0.0.1:9/v1", timeout=0.5):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # a killed holder leaves nothing stuck
    with claim("ab" * 32, purpose="fine-tune", base_url="http://127.0.0.1:9/v1", timeout=5):
        pass
