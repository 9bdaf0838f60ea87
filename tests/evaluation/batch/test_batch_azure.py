"""Batch mode with an AzureOpenAI client: Azure's line url, no model lookup, a clear Global-Batch warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai

from finetune_wb.evaluation import BatchOptions, evaluate
from tests.evaluation.batch.conftest import examples

FAST = BatchOptions(poll_interval=0.01, max_poll_interval=0.05)


def azure(emu: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=emu.url, api_key="k", api_version="2024-10-21")


def test_azure_batch_uses_the_deployment_name_and_azure_url(emu: Any, tmp_path: Path) -> None:
    report = evaluate(
        examples(4),
        models=["gpt-4o-mini"],
        client=azure(emu),
        cache=tmp_path / "c.db",
        progress=False,
        mode="batch",
        batch=FAST,
    )
    assert report.ok and [b.status for b in report.batches] == ["completed"]
    assert not any(e.path.startswith("/v1/models") for e in emu.journal)  # deployments are not model ids
    [upload] = [f for f in emu.core.store.files.values() if f["purpose"] == "batch"]
    first = json.loads(emu.core.store.read_blob(upload["id"]).splitlines()[0])
    assert first["url"] == "/chat/completions" and first["body"]["model"] == "gpt-4o-mini"


def test_azure_without_a_global_batch_deployment_says_so(emu: Any, tmp_path: Path) -> None:
    emu.batch_fault(fail_validation="The deployment gpt-4o-mini is not a Global-Batch deployment.")
    report = evaluate(
        examples(3),
        models=["gpt-4o-mini"],
        client=azure(emu),
        cache=tmp_path / "c.db",
        progress=False,
        mode="batch",
        batch=FAST,
    )
    assert not report.ok
    [warning] = [w for w in report.warnings if "failed validation" in w]
    assert "Global-Batch deployment" in warning and "--fallback sync" in warning
    assert all("not a Global-Batch deployment" in (r.error or "") for r in report.rows)
