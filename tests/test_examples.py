"""The examples run against the embedded emulator, as a user would run them (scripts as subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.config.model import RunConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=240)


def test_legalbench_example_against_the_emulator(legalbench_dir: Path, tmp_path: Path) -> None:
    proc = _run(
        [
            str(EXAMPLES / "legalbench_contract_nli.py"),
            "--emulator",
            "--data",
            str(legalbench_dir / "examples.jsonl"),
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Validation of" in out and "status: OK" in out
    assert "Evaluation of 87 examples" in out  # 117 clauses, 30 for training
    assert "mcnemar_exact" in out
    assert "loaded 117 clauses" in proc.stderr


def test_service_example_self_test(tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = _run(
        [str(EXAMPLES / "service.py"), "--emulator", "--self-test", "--work-dir", str(work)], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""  # a service logs, it does not print
    (job_dir,) = [p for p in work.iterdir() if p.is_dir()]
    result = json.loads((job_dir / "result.json").read_text())
    state = json.loads((job_dir / "state.json").read_text())
    assert result["job_id"] == state["job_id"] and state["job_status"] == "succeeded"
    assert "self-test result" in proc.stderr


def test_sample_configs_are_valid() -> None:
    toml_cfg = RunConfig.load(EXAMPLES / "contract_nli.toml")
    assert toml_cfg.job_spec().model == "gpt-4o-mini-2024-07-18"
    assert toml_cfg.resolve(toml_cfg.data.path or "").is_file()
    yaml_cfg = RunConfig.load(EXAMPLES / "demo.yaml")
    assert yaml_cfg.data.demo and yaml_cfg.evaluation.baselines == ["gpt-4o-mini-2024-07-18"]


@pytest.mark.parametrize(
    ("config", "evaluator"), [("contract_nli.toml", "classification"), ("demo.yaml", "exact_match")]
)
def test_sample_configs_run_on_the_emulator(
    capsys: pytest.CaptureFixture[str], config: str, evaluator: str
) -> None:
    assert main(["run", str(EXAMPLES / config), "--emulator", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["job_status"] == "succeeded"
    metrics = result["evaluation"]["metrics"]
    assert metrics[result["fine_tuned_model"]][evaluator] > metrics["gpt-4o-mini-2024-07-18"][evaluator]
    assert not list(EXAMPLES.glob("*.state.json"))  # --emulator keeps its state in a temp dir


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    nbformat.validate(nb)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    last = [c for c in nb.cells if c.cell_type == "code"][-2]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in last.outputs)
    assert "90, 0)" in text  # on resume every answer came from the cache: 90 cached, 0 requests


def test_custom_evaluator_example(tmp_path: Path) -> None:
    proc = _run([str(EXAMPLES / "custom_evaluator.py")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fine-tune vs base [exact_match]" in proc.stdout and "mcnemar_exact" in proc.stdout


def test_legalbench_example_against_a_server_asks_then_runs_and_resumes(
    legalbench_dir: Path, tmp_path: Path, finetune_emulator: Any
) -> None:
    """Without --emulator the script talks to OPENAI_BASE_URL (here the emulator standing in for OpenAI)."""
    import os

    finetune_emulator.pace = 0.01
    env = {**os.environ, "OPENAI_BASE_URL": finetune_emulator.base_url}
    base = [str(EXAMPLES / "legalbench_contract_nli.py"), "--data", str(legalbench_dir / "examples.jsonl")]
    state = str(tmp_path / "state.json")

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *base, "--state", state, *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def posts(path: str) -> int:
        return sum(
            1 for e in finetune_emulator.journal if e.method == "POST" and e.path == path and e.status < 400
        )

    declined = run()  # no terminal to ask on: no job, no traceback, the way forward is named
    assert declined.returncode == 1 and "Traceback" not in declined.stderr
    assert "estimated $" in declined.stderr and "--yes" in declined.stdout
    assert posts("/v1/fine_tuning/jobs") == 0

    done = run("--yes")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Evaluation of 87 examples" in done.stdout
    again = run()  # the same state file: the job exists, nothing to ask, nothing created
    assert again.returncode == 0, again.stderr[-3000:]
    assert posts("/v1/fine_tuning/jobs") == 1 and posts("/v1/files") == 1

    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "legalbench_contract_nli.py"), "--emulator", "--data", "nope.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "nope.jsonl" in missing.stderr
