"""A password in the base URL's user-info never leaves the process, and the API key stays the bearer token.

``OPENAI_BASE_URL=http://user:<password>@127.0.0.1:PORT/v1`` (the emulator): a whole session and
``finetune-wb eval --json`` run (the emulator accepts only ``Authorization: Bearer``, so each request carried
the key, not Basic auth), and neither the password nor the key is in any file, output or log record.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from finetune_wb._paths import state_dir
from finetune_wb.cli import main
from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.fakes.wandb_readback import files_containing

SECRET = "s3cret-pw"
API_KEY = "sk-test-credentials-key"
BASE = "gpt-4o-mini-2024-07-18"


def _with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://user:{SECRET}@", 1)


def _write_eval_data(path: Path, n: int) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": f"Clause {i}?"}, {"role": "assistant", "content": "Yes"}]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _leaks(where: list[Path], out: str, err: str, records: list[logging.LogRecord]) -> list[str]:
    found = files_containing([SECRET, API_KEY], *where)
    for secret in (SECRET, API_KEY):
        found += [f"stdout: {line}" for line in out.splitlines() if secret in line]
        found += [f"stderr: {line}" for line in err.splitlines() if secret in line]
        found += [f"log {r.name}: {r.getMessage()}" for r in records if secret in r.getMessage()]
    return found


def test_user_info_in_openai_base_url_is_neither_sent_nor_stored_nor_shown(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    no_online_wandb: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    plain = finetune_emulator.base_url.rstrip("/")
    monkeypatch.setenv("OPENAI_BASE_URL", _with_userinfo(finetune_emulator.base_url))
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    session_dir = tmp_path / "session"

    session = FineTuneSession(
        project="t-credentials", state_path=session_dir / "state.json", poll_interval=0.1
    )
    session.prepare(load_demo_records()[:30], template=demo_template(), n_train=10, seed=2)
    assert session.validate(model=BASE).ok
    session.fine_tune(JobSpec(model=BASE, n_epochs=1))
    job = session.wait()
    assert job.status == "succeeded" and job.fine_tuned_model
    session.evaluate(baselines=[BASE], evaluators=["exact_match"])
    state = json.loads((session_dir / "state.json").read_text())
    assert state["base_url"] == plain  # the server, without its user-info

    data = _write_eval_data(tmp_path / "test.jsonl", 4)
    named = ["--cache", str(tmp_path / "eval.db"), "--wandb-project", "t-credentials"]  # + a W&B eval run
    for extra in (named, []):  # a named cache, and the default one
        assert main(["eval", "--data", str(data), "--model", BASE, "--json", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        assert [m["base_url"] for m in out["models"]] == [plain]
    asked = sum(1 for e in finetune_emulator.journal if e.path == "/v1/chat/completions")
    assert main(["eval", "--data", str(data), "--model", BASE, "--json"]) == 0  # all cached: nothing asked
    assert sum(1 for e in finetune_emulator.journal if e.path == "/v1/chat/completions") == asked

    assert all(e.status != 401 for e in finetune_emulator.journal)  # every request carried the Bearer key
    captured = capsys.readouterr()
    roots = [tmp_path, state_dir(), Path(os.environ["WANDB_DIR"]), Path(os.environ["WANDB_DATA_DIR"])]
    assert _leaks(roots, captured.out, captured.err, caplog.records) == []
    warned = [r for r in caplog.records if "user-info" in r.getMessage()]
    assert len(warned) == 1 and plain in warned[0].getMessage()  # said once, naming the server


def test_eval_cache_keys_of_urls_without_credentials_are_unchanged(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cache filled against ``http://127.0.0.1:PORT/v1`` is hit by a run against the same URL with user-info
    (and by one without): the key names the server as it always did."""
    from finetune_wb.evaluation.cache import cache_key

    plain = finetune_emulator.base_url.rstrip("/")
    messages = [{"role": "user", "content": "hi"}]
    assert cache_key(plain, BASE, messages, {}) == cache_key(plain + "/", BASE, messages, {})
    data = _write_eval_data(tmp_path / "test.jsonl", 3)
    db = str(tmp_path / "eval.db")
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    assert main(["eval", "--data", str(data), "--model", BASE, "--cache", db, "--json"]) == 0
    asked = sum(1 for e in finetune_emulator.journal if e.path == "/v1/chat/completions")
    assert asked == 3
    monkeypatch.setenv("OPENAI_BASE_URL", _with_userinfo(finetune_emulator.base_url))
    assert main(["eval", "--data", str(data), "--model", BASE, "--cache", db, "--json"]) == 0
    assert sum(1 for e in finetune_emulator.journal if e.path == "/v1/chat/completions") == asked
    capsys.readouterr()


def test_errors_about_an_unreachable_server_name_it_without_its_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{SECRET}@127.0.0.1:9/v1")  # nothing listens there
    data = _write_eval_data(tmp_path / "test.jsonl", 2)
    argv = ["eval", "--data", str(data), "--model", BASE, "--json"]
    code = main([*argv, "--cache", str(tmp_path / "eval.db")])
    captured = capsys.readouterr()
    assert code != 0
    assert "127.0.0.1:9" in captured.out + captured.err
    assert _leaks([tmp_path, state_dir()], captured.out, captured.err, caplog.records) == []


def test_a_state_written_with_user_info_is_resumed_without_showing_it(
    finetune_emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, no_online_wandb: list[str]
) -> None:
    """A state file from before this fix may hold ``user:password@``: the resume's warning and the state it
    writes name the server without it."""
    state_path = tmp_path / "state.json"
    session = FineTuneSession(project="t-cred", client=finetune_emulator.client(), state_path=state_path)
    session.prepare(load_demo_records()[:30], template=demo_template(), n_train=10, seed=2)
    state = json.loads(state_path.read_text())
    state["base_url"] = f"http://user:{SECRET}@old-gateway.test:8443/v1"
    state_path.write_text(json.dumps(state))
    caplog.set_level(logging.INFO)
    resumed = FineTuneSession(project="t-cred", client=finetune_emulator.client(), state_path=state_path)
    resumed.fine_tune(JobSpec(model=BASE, n_epochs=1))
    warned = [r.getMessage() for r in caplog.records if "was started against" in r.getMessage()]
    assert warned and "http://old-gateway.test:8443/v1" in warned[0]
    assert not [m for m in (r.getMessage() for r in caplog.records) if SECRET in m]
    assert SECRET not in state_path.read_text()
