"""`finetune-wb demo` end to end (a subprocess, offline, default pace) and `finetune-wb run CONFIG`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.demo import DemoDeclined, DemoResult, format_summary, run_demo

BASE = "gpt-4o-mini-2024-07-18"


def _posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status < 400)


def test_offline_demo_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WANDB_MODE")
    }
    out = tmp_path / "demo"
    exe = Path(sys.executable).with_name("finetune-wb")
    started = time.monotonic()
    proc = subprocess.run(
        [str(exe), "demo", "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 120, f"the offline demo took {elapsed:.0f} s"
    result = DemoResult.model_validate(json.loads(proc.stdout))
    assert result.mode == "emulator" and result.base_url.startswith("http://127.0.0.1:")
    assert (result.n_records, result.n_train, result.n_test) == (120, 30, 90)
    assert result.validation["ok"] and result.validation["n_errors"] == 0
    assert result.job_status == "succeeded" and result.fine_tuned_model
    # the one --json metrics schema: numbers in metrics, the objects in metric_details (as `eval --json`)
    ft = result.metrics[result.fine_tuned_model]
    base = result.metrics[BASE]
    for name in ("exact_match", "classification"):
        assert ft[name] is not None and base[name] is not None and ft[name] > base[name]
        detail = result.metric_details[result.fine_tuned_model][name]
        assert detail["ci_low"] <= ft[name] == detail["value"] <= detail["ci_high"]
    clf = result.metric_details[result.fine_tuned_model]["classification"]
    for key in ("accuracy", "majority_class_rate", "balanced_accuracy", "macro_f1", "cohen_kappa"):
        assert isinstance(clf[key], float), key
    assert clf["beats_majority"] is True
    comparison = next(c for c in result.comparisons if c["evaluator"] == "exact_match")
    assert comparison["test"] == "mcnemar_exact" and comparison["p_value"] < 0.001
    # W&B ran offline under --out, one run per step, and the summary says how to sync them
    assert result.wandb_mode == "offline"
    assert set(result.wandb_runs) == {"dataset", "fine-tune", "eval"}
    for run_dir in result.wandb_runs.values():
        assert Path(run_dir).is_dir() and Path(run_dir).is_relative_to(out)
        assert list(Path(run_dir).glob("run-*.wandb"))
    assert result.sync_command and result.sync_command.startswith("wandb sync ")
    assert (out / "state.json").is_file()
    # progress went to stderr, the JSON alone to stdout
    assert "job ftjob-" in proc.stderr
    assert "W&B is offline" not in proc.stderr  # the summary says where the runs are and how to sync them

    text = format_summary(result)
    for needle in ("validation  ok", result.job_id, "95% confidence interval", "p = ", "wandb sync"):
        assert needle in text
    assert "balanced acc " in text and "kappa " in text and "beats always " in text


def test_real_run_asks_before_spending(finetune_emulator: Any, tmp_path: Path) -> None:
    finetune_emulator.pace = 0.01
    client = finetune_emulator.client()
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(DemoDeclined, match="--yes"):
        run_demo(out_dir=tmp_path, emulator=False, client=client, confirm=decline, n_train=12)
    assert questions and "estimated $" in questions[0]
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 0
    with pytest.raises(DemoDeclined):  # no way to ask (no terminal): refuse
        run_demo(out_dir=tmp_path, emulator=False, client=client, confirm=None, n_train=12)

    result = run_demo(out_dir=tmp_path, emulator=False, client=client, confirm=lambda q: True, n_train=12)
    assert result.mode == "openai" and result.job_status == "succeeded"
    # a real run keeps its state: running it again resumes the same job without asking or creating another
    again = run_demo(out_dir=tmp_path, emulator=False, client=client, confirm=decline, n_train=12)
    assert again.job_id == result.job_id
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    assert _posts(finetune_emulator, "/v1/files") == 1


CONFIG = """
project = "cli-run"
wandb_mode = "disabled"

[data]
demo = true
limit = 50

[template]
system = "Answer Yes or No."
user = "Clause: {text}"

[split]
n_train = 14
seed = 3

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 2

[evaluation]
baselines = ["gpt-4o-mini-2024-07-18"]
evaluators = ["exact_match", { name = "classification", labels = ["Yes", "No"] }]
max_tokens = 32
"""


def test_run_command_runs_and_resumes(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["run", str(cfg), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["state_path"] == str(tmp_path / "run.state.json")
    assert first["job_status"] == "succeeded"
    ft = first["fine_tuned_model"]
    metrics = first["evaluation"]["metrics"]  # numbers, as in `eval --json`; the objects in metric_details
    assert metrics[ft]["exact_match"] > metrics[BASE]["exact_match"]
    details = first["evaluation"]["metric_details"]
    assert details[ft]["exact_match"]["value"] == metrics[ft]["exact_match"]
    assert {"accuracy", "majority_class_rate", "balanced_accuracy", "macro_f1", "cohen_kappa"} <= set(
        details[ft]["classification"]
    )
    chats = _posts(finetune_emulator, "/v1/chat/completions")

    assert main(["run", str(cfg)]) == 0  # again: same job, answers from the cache
    text = capsys.readouterr().out
    assert first["job_id"] in text and "exact_match" in text
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/chat/completions") == chats


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[data]\ndemo = true\n[jbo]\n", "jbo"),
        ('[data]\ndemo = true\n[evaluation]\nevaluators = ["exact_matc"]\n', "evaluation.evaluators[0]"),
        ("[data]\ndemo = true\n[job]\nn_epochs = 0\n", "job.n_epochs"),
    ],
)
def test_run_command_bad_config_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, key: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body, encoding="utf-8")
    assert main(["run", str(cfg), "--json"]) == 2  # before any request (the conftest server is a closed port)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.toml" in captured.err and key in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "bad.state.json").exists()


def test_run_command_refuses_remote_server_without_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a remote-looking server that is never contacted: the refusal happens before any request
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.invalid/v1")
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["run", str(cfg)]) == 1
    assert "--yes" in capsys.readouterr().err


class _Terminal:
    """A stdin that is a terminal, so the CLI asks its question (``input`` is patched to answer)."""

    def isatty(self) -> bool:
        return True


def test_demo_command_with_a_key_shows_the_cost_asks_and_runs_for_real(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`finetune-wb demo` with OPENAI_API_KEY set, the emulator standing in for the real API."""
    finetune_emulator.pace = 0.01
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-real-looking")
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    asked: list[str] = []
    answers = iter(["n", "y"])

    def answer(prompt: str = "") -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    out = tmp_path / "demo"

    assert main(["demo", "--out", str(out)]) == 1  # declined: nothing is created
    err = capsys.readouterr().err
    assert "estimated cost $" in err and "--yes" in err
    assert len(asked) == 1 and "estimated $" in asked[0] and asked[0].endswith("[y/N] ")
    assert _posts(finetune_emulator, "/v1/files") == 0
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 0

    assert main(["demo", "--out", str(out)]) == 0  # accepted: a real run against the configured server
    captured = capsys.readouterr()
    assert len(asked) == 2
    assert f"finetune-wb demo — {finetune_emulator.base_url}" in captured.out
    assert "fine-tune - baseline" in captured.out and "p = " in captured.out
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1

    assert main(["demo", "--out", str(out), "--yes", "--json"]) == 0  # again: resumes, asks nothing
    import logging

    from finetune_wb.cli.run import _drop_offline_hint

    root_handlers = logging.getLogger().handlers
    assert root_handlers and all(_drop_offline_hint not in h.filters for h in root_handlers)  # left as found
    again = json.loads(capsys.readouterr().out)
    assert again["mode"] == "openai" and again["job_status"] == "succeeded"
    assert len(asked) == 2
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    assert _posts(finetune_emulator, "/v1/files") == 1


def test_unwritable_output_locations_are_named_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    assert main(["demo", "--out", str(blocker / "demo")]) == 1
    err = capsys.readouterr().err
    assert str(blocker / "demo") in err and "writable" in err and "Traceback" not in err

    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["run", str(cfg), "--state", str(blocker / "state.json")]) == 1
    err = capsys.readouterr().err
    assert "cannot write the session state file" in err and str(blocker / "state.json") in err


def test_a_real_run_after_an_offline_demo_in_the_same_directory_starts_its_own_session(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    """The README's order: `finetune-wb demo` offline first, then with a key; the offline job is not there."""
    finetune_emulator.pace = 0.01
    offline = run_demo(out_dir=tmp_path, emulator=True, pace=0.02, n_train=12)
    assert offline.mode == "emulator"
    lines: list[str] = []
    real = run_demo(
        out_dir=tmp_path,
        emulator=False,
        client=finetune_emulator.client(),
        confirm=lambda _q: True,
        n_train=12,
        echo=lines.append,
    )
    assert real.mode == "openai" and real.job_status == "succeeded"
    assert real.job_id != offline.job_id
    assert any("starting a new one" in line for line in lines)
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1


@pytest.mark.parametrize(
    ("configured", "used"), [("online", "offline"), (None, "offline"), ("disabled", "disabled")]
)
def test_run_emulator_never_logs_to_the_online_project(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    configured: str | None,
    used: str,
) -> None:
    from finetune_wb.session import config_runner as config_module

    seen: list[str | None] = []

    def fake_run_config(config: Any, **_: Any) -> Any:
        seen.append(config.wandb_mode)
        return config_module.RunResult(
            state_path="s.json",
            session_id="x",
            job_id=None,
            job_status=None,
            fine_tuned_model=None,
            validation=None,
            evaluation=None,
        )

    monkeypatch.setattr(config_module, "run_config", fake_run_config)
    cfg = tmp_path / "run.toml"
    mode_line = f'wandb_mode = "{configured}"\n' if configured else ""
    cfg.write_text(mode_line + "[data]\ndemo = true\n", encoding="utf-8")
    assert main(["run", str(cfg), "--emulator", "--json"]) == 0
    assert seen == [used]
    capsys.readouterr()
