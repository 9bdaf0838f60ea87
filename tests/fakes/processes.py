"""Driving worker subprocesses in crash tests: wait for a condition while the worker lives, then kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_until(
    cond: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 120.0
) -> None:
    """Poll ``cond`` until it holds; fail (with the worker's stderr) if the worker exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) before {what}: {proc.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError(f"timed out waiting for {what}")


def kill9(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the worker (no cleanup of any kind runs) and check that this is how it ended."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file as the worker left it; {} while it is missing or half-written."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
