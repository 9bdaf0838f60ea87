"""Fixtures for the tests of real local training (``finetune-wb[local]``: torch, transformers, trl, peft).

Without the extra these tests are not collected at all (the rest of the suite runs without torch); CI
installs the extra and runs them. They build their own tiny model: no download.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LOCAL_EXTRA = ("torch", "transformers", "trl", "peft", "datasets")
HAS_LOCAL_EXTRA = all(importlib.util.find_spec(m) is not None for m in LOCAL_EXTRA)

if not HAS_LOCAL_EXTRA:  # not a skip: the files are left out, and the header says why
    if os.environ.get("FINETUNE_WB_REQUIRE_LOCAL_TESTS") == "1":  # CI: leaving them out would hide them
        raise pytest.UsageError(
            "FINETUNE_WB_REQUIRE_LOCAL_TESTS=1 but the [local] extra is not installed "
            f"(needs {', '.join(LOCAL_EXTRA)}): make test EXTRAS=dev,local"
        )
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config: pytest.Config) -> str:
    if HAS_LOCAL_EXTRA:
        return "tests/local: the [local] extra is installed; real TRL training tests run"
    return "tests/local: not collected (install finetune-wb[local] to run the real TRL training tests)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/local/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.local)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.local.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture
def trl_emulator(tiny_model: Path, tmp_path: Path) -> Iterator[Any]:
    """An emulator whose jobs fine-tune the tiny model for real (full fine-tuning: fastest to learn)."""
    from finetune_wb.emulator.runner import Emulator
    from finetune_wb.emulator.trl_trainer import TrlTrainer

    trainer = TrlTrainer(
        str(tiny_model), served_name="tiny-llama", full=True, max_new_tokens=4, base_learning_rate=1e-4
    )
    with Emulator(persist_dir=tmp_path / "state", trainer=trainer) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _one_thread_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Torch on every core of a shared 2-core machine is ~8x slower here than on one thread per process."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
