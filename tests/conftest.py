"""Shared fixtures: offline tiktoken cache, isolated W&B and local state, no network.

The emulator fixtures (``finetune_emulator`` and friends) come from the package's own pytest plugin,
``finetune_wb.emulator.pytest_plugin``, registered through the ``pytest11`` entry point.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
LEGALBENCH = SHARED / "legalbench" / "contract_nli_explicit_identification"

# tiktoken downloads encodings on first use, which cannot work here; use the shared offline cache unless
# the person running the tests chose a cache of their own.
if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken-cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken-cache")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own W&B directories and local state, W&B offline, and no route to OpenAI."""
    root = tmp_path_factory.mktemp("env")
    for var, sub in {
        "WANDB_DIR": "wandb",
        "WANDB_DATA_DIR": "wandb-data",
        "WANDB_CACHE_DIR": "wandb-cache",
        "WANDB_CONFIG_DIR": "wandb-config",
        "WANDB_ARTIFACT_DIR": "wandb-artifacts",
        "FINETUNE_WB_HOME": "finetune-wb-home",
    }.items():
        path = root / sub
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # Nothing may reach the real API: a client built from the environment points at a closed local port.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _fresh_wandb_setup() -> Iterator[None]:
    """wandb keeps one setup per process, bound to the WANDB_DIR of the first run; drop it around each test
    so every test's runs land in that test's own directories."""
    _wandb_teardown()
    yield
    _wandb_teardown()


def _wandb_teardown() -> None:
    wandb = sys.modules.get("wandb")
    if wandb is not None:
        wandb.teardown()


@pytest.fixture
def legalbench_dir() -> Path:
    """The seed's real dataset (117 contract clauses, Yes/No), read in place from ../shared."""
    assert LEGALBENCH.is_dir(), f"expected the LegalBench data at {LEGALBENCH}"
    return LEGALBENCH


@pytest.fixture
def no_online_wandb(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Offline, these must never be called: each raises and records the attempt (the list of attempts)."""
    import wandb
    from wandb.sdk.wandb_run import Run

    calls: list[str] = []

    def forbid(name: str) -> Any:
        def _raise(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called while offline")

        return _raise

    monkeypatch.setattr(wandb, "Api", forbid("wandb.Api"))
    monkeypatch.setattr(wandb, "login", forbid("wandb.login"))
    monkeypatch.setattr(Run, "use_artifact", forbid("Run.use_artifact"))
    return calls
