"""``finetune-wb serve --serve-with vllm``: usage errors, vLLM missing, and a vLLM child that dies at start
(the fake vLLM of tests/fakes; no torch needed: the TRL trainer is only constructed, never run)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.fakes.vllm_helpers import FAKE_VLLM_COMMAND


@pytest.fixture(autouse=True)
def _no_local_extra_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_wb.emulator.trl_trainer as trl_trainer

    monkeypatch.setattr(trl_trainer, "require_local_extra", lambda: None)


def serve(tmp_path: Any, *extra: str) -> list[str]:
    return ["serve", "--trainer", "trl", "--model", "/models/base", "--name", "base-llm", "--port", "0",
            "--output-dir", str(tmp_path / "serve"), "--serve-with", "vllm", *extra]  # fmt: skip


def test_vllm_serves_only_the_trl_trainer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--trainer", "nearest-neighbour", "--serve-with", "vllm", "--port", "0"]) == 2
    assert "--serve-with vllm serves the models of --trainer trl" in capsys.readouterr().err


def test_missing_vllm_says_how_to_install(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import finetune_wb.emulator.vllm_server as vllm_server

    monkeypatch.setattr(vllm_server, "default_vllm_command", lambda: None)
    assert main(serve(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "needs vLLM, which is not installed: pip install vllm" in err and "--vllm-url" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--vllm-max-lora-rank", "12"], "--vllm-max-lora-rank must be one of 1, 8, 16, 32"),
        (
            ["--lora-r", "32", "--vllm-max-lora-rank", "16"],
            "--vllm-max-lora-rank 16 is smaller than --lora-r 32",
        ),
        (["--vllm-max-loras", "0"], "--vllm-max-loras must be >= 1"),
        (["--vllm-gpu-memory-utilization", "1.5"], "--vllm-gpu-memory-utilization must be in (0, 1]"),
        (["--lora-r", "1024"], "vLLM serves LoRA ranks up to 512, not 1024"),
    ],
)
def test_bad_vllm_flags_are_usage_errors(
    tmp_path: Any, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(serve(tmp_path, "--vllm-command", shlex.join(FAKE_VLLM_COMMAND), *flags)) == 2
    assert message in capsys.readouterr().err


def test_a_vllm_child_that_dies_at_start_fails_the_command_with_its_stderr(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_VLLM_FAIL_AT_START", "CUDA out of memory. Tried to allocate 2.00 GiB")
    assert main(serve(tmp_path, "--vllm-command", shlex.join(FAKE_VLLM_COMMAND))) == 1
    err = capsys.readouterr().err
    assert "exited with status 1 before it was ready" in err
    assert "ValueError: CUDA out of memory. Tried to allocate 2.00 GiB" in err
    assert (tmp_path / "serve" / "vllm.log").is_file()
