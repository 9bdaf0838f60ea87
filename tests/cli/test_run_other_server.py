"""``finetune-wb run CONFIG`` on a state file whose session ran against another server: say what to do
(point back at that server, or ``--new-session``) instead of a bare 404; ``--new-session`` starts anew."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.emulator.runner import run_emulator

CONFIG = """
project = "other-server"
wandb_mode = "disabled"

[data]
demo = true
limit = 30

[split]
n_train = 12

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 1

[evaluation]
skip = true
"""


def test_run_resuming_a_session_of_another_server(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first_server = finetune_emulator
    first_server.pace = 0.01
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    state = tmp_path / "run.state.json"
    monkeypatch.setenv("OPENAI_BASE_URL", first_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["run", str(cfg), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    old = json.loads(state.read_text())

    with run_emulator(pace=0.01) as other:
        monkeypatch.setenv("OPENAI_BASE_URL", other.base_url)
        assert main(["run", str(cfg)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "404" not in err
        assert first_server.base_url.rstrip("/") in err and other.base_url.rstrip("/") in err
        assert first["job_id"] in err and "--new-session" in err and "OPENAI_BASE_URL" in err
        assert not [e for e in other.journal if e.path.startswith("/v1/fine_tuning")]  # nothing asked there
        assert json.loads(state.read_text()) == old  # the state is untouched

        assert main(["run", str(cfg), "--new-session", "--json"]) == 0
        second = json.loads(capsys.readouterr().out)
        assert second["job_id"] != first["job_id"] and second["session_id"] != first["session_id"]
        created = [e for e in other.journal if e.path == "/v1/fine_tuning/jobs" and e.method == "POST"]
        assert len(created) == 1
    kept = tmp_path / f"run.state.{first['session_id']}.json"
    assert json.loads(kept.read_text()) == old  # the previous session's state is kept beside it
