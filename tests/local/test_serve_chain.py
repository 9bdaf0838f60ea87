"""The whole chain against ``finetune-wb serve --trainer trl`` through OPENAI_BASE_URL: the CLI's ``train
--wait``, then FineTuneSession (upload, job, wait with W&B tracking, evaluation against the untrained base)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession
from tests.local.helpers import TOY_HP
from tests.local.tiny import toy_examples, write_jsonl


@pytest.fixture
def served(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``finetune-wb serve`` in a process of its own; yields its base URL (set as OPENAI_BASE_URL)."""
    cmd = [
        sys.executable, "-m", "finetune_wb", "serve", "--trainer", "trl", "--model", str(tiny_model),
        "--name", "tiny-llama", "--port", "0", "--output-dir", str(tmp_path / "serve"), "--full",
        "--base-learning-rate", "1e-4", "--max-new-tokens", "4",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:"), (
            url,
            proc.stderr.read() if proc.poll() is not None else "",
        )  # type: ignore[union-attr]
        assert proc.stdout.readline().strip() == "model: tiny-llama"  # type: ignore[union-attr]
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_cli_train_wait_and_session_chain(
    served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", toy_examples(2))
    test = write_jsonl(tmp_path / "test.jsonl", toy_examples(1))

    code = main(
        ["train", "--model", "tiny-llama", "--training-file", str(train), "--epochs", "1", "--batch-size", "8",
         "--wait", "--json", "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    printed: dict[str, Any] = json.loads(out)
    assert printed["status"] == "succeeded" and printed["fine_tuned_model"].startswith("ft:tiny-llama:"), (
        printed
    )

    session = FineTuneSession(project="t-local", state_path=tmp_path / "state.json", poll_interval=0.2)
    session.use_files(train, test)
    # the toy task is memorisation: its test prompts are training prompts on purpose, so the leak is accepted
    job = session.fine_tune(JobSpec(model="tiny-llama", seed=1, **TOY_HP), accept_quality={"leakage"})
    job = session.wait(timeout=200)
    assert job.status == "succeeded" and job.fine_tuned_model
    result = session.evaluate(baselines=["tiny-llama"], evaluators=["exact_match"])
    ft = job.fine_tuned_model
    assert result.metric(ft, "exact_match") >= 0.8
    assert result.metric(ft, "exact_match") > result.metric("tiny-llama", "exact_match")
