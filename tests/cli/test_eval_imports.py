"""``finetune-wb eval`` imports only what it uses: no wandb without ``--wandb-project`` (a whole process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli.test_eval import BASE, write_data

# Runs the real command line in a fresh interpreter, then reports which top-level packages it imported.
PROBE = r"""
import json, sys
from finetune_wb.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""

NEVER = {"pandas", "datasets", "torch", "transformers", "inspect_ai", "tiktoken", "matplotlib", "scipy"}


def _modules(finetune_emulator: Any, tmp_path: Path, *extra: str) -> tuple[int, set[str]]:
    data = write_data(tmp_path / "test.jsonl", 3)
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-progress", "--json"]
    argv += ["--cache", str(tmp_path / "c.sqlite3"), *extra]
    env = {**os.environ, "OPENAI_BASE_URL": finetune_emulator.base_url, "OPENAI_API_KEY": "sk-test"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["code"], set(out["modules"])


def test_eval_without_wandb_project_never_imports_wandb(finetune_emulator: Any, tmp_path: Path) -> None:
    code, modules = _modules(finetune_emulator, tmp_path)
    assert code == 0
    assert "wandb" not in modules
    assert not modules & NEVER, modules & NEVER


def test_eval_with_wandb_project_imports_wandb(finetune_emulator: Any, tmp_path: Path) -> None:
    """The control: the probe does see wandb when the command really logs a run (offline here)."""
    code, modules = _modules(finetune_emulator, tmp_path, "--wandb-project", "imports-probe")
    assert code == 0
    assert "wandb" in modules
