"""The W&B runs finetune_wb starts record no credential from the process: not its command line, not its
environment (``x_disable_meta``: wandb would store ``sys.argv`` and the git remote in the run's metadata).

A real process is started with an ``sk-...`` key as a command-line argument and in environment variables;
it starts offline runs through ``start_run`` and through a session's ``SessionRuns``; every file under its
W&B directory is then searched for the keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.wandb_readback import files_containing, read_run, run_dirs

ARG_KEY = "sk-argv-0123456789abcdefSECRET"
ENV_KEY = "sk-env-fedcba9876543210SECRET"

WORKER = """
import sys
from pathlib import Path
from finetune_wb.session.runs import SessionRuns
from finetune_wb.session.state import SessionState
from finetune_wb.tracking.mode import start_run

wandb_dir = sys.argv[1]
run = start_run(project="meta", job_type="sync", name="plain", config={"n": 1}, dir=wandb_dir)
run.log({"x": 1.0})
run.finish()
runs = SessionRuns(SessionState(project="meta"), Path(wandb_dir) / "state.json", mode="offline", wandb_dir=wandb_dir)
run = runs.start("eval", name="session-run")
run.log({"y": 2.0})
run.finish()
print("ok", flush=True)
"""


def test_runs_record_no_key_from_the_command_line_or_environment(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    wandb_dir = tmp_path / "wb"
    wandb_dir.mkdir()
    env = {**os.environ, "OPENAI_API_KEY": ENV_KEY, "MY_GATEWAY_TOKEN": ENV_KEY, "WANDB_DIR": str(wandb_dir)}
    proc = subprocess.run(
        [sys.executable, str(script), str(wandb_dir), "--api-key", ARG_KEY, f"--token={ARG_KEY}"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    dirs = run_dirs(wandb_dir)
    assert len(dirs) == 2 and all(read_run(d).exit_code == 0 for d in dirs)
    assert files_containing([ARG_KEY, ENV_KEY], wandb_dir) == []
