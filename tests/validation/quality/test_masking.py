"""No output of the quality checks holds a secret or personal datum it found: text, repr, HTML, JSON, the
error raised, the CLI and W&B (metadata, findings table, examples table)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import DataQualityError
from finetune_wb.validation.quality import check_quality, mask_text
from finetune_wb.validation.validate import validate_file
from tests.fakes.wandb_readback import read_run, run_dir_of, staged_file
from tests.validation.quality import crafted as c

FOUND = c.SECRETS + c.PERSONAL


def _in_text(value: str) -> str:
    return f"password: {value}" if value == c.PASSWORD else value


def _leaky_file(tmp_path: Path) -> Path:
    rows = c.clean_rows(30)
    for k, text in enumerate(FOUND):
        rows[k] = c.chat(f"{c.filler(k)} {_in_text(text)}", "Billing")
    rows[20] = c.chat(c.filler(20), c.EMAIL)  # an answer that is a label and personal data at once
    rows[21] = c.chat(c.filler(21), c.EMAIL)
    return c.write(tmp_path / "leaky.jsonl", rows)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def assert_clean(text: str) -> None:
    for secret in FOUND:
        assert secret not in text, secret
    for number in (c.CARD, c.IBAN, c.PHONE):  # with or without its spaces
        assert _digits(number) not in _digits(text.replace(" ", "")) or len(_digits(number)) < 9, number
    assert c.EMAIL.split("@")[0] not in text


def test_every_rendering_of_the_report_is_masked(tmp_path: Path) -> None:
    report = check_quality(_leaky_file(tmp_path))
    assert report.counts["secret"] == 7 and report.counts["personal_data"] >= 4
    assert_clean(report.summary())
    assert_clean(str(report))
    assert_clean(repr(report))
    assert_clean(report._repr_html_())
    assert_clean(report.model_dump_json())
    assert_clean(json.dumps(report.model_dump(mode="json")))
    for finding in report.findings:
        assert_clean(str(finding))
    assert report.labels is not None and all("***" in k for k in report.labels if "@" in k)
    with pytest.raises(DataQualityError) as info:
        report.raise_for_errors()
    assert_clean(str(info.value))
    assert "accept_quality={'secret'}" in str(info.value)


def test_the_validation_report_with_quality_is_masked(tmp_path: Path) -> None:
    report = validate_file(_leaky_file(tmp_path), quality=True)
    assert report.quality is not None and not report.ok
    assert_clean(report.summary())
    assert_clean(report._repr_html_())
    assert_clean(report.model_dump_json())


def test_cli_output_is_masked(tmp_path: Path) -> None:
    path = _leaky_file(tmp_path)
    for flags in (["--json"], []):
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("finetune-wb")), "validate", str(path), "--quality", *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        assert "[secret]" in proc.stdout or '"secret"' in proc.stdout
        assert "AKIA****" in proc.stdout
        assert_clean(proc.stdout + proc.stderr)


def test_mask_text_masks_each_kind() -> None:
    text = " | ".join(_in_text(v) for v in FOUND)
    masked = mask_text(text)
    assert_clean(masked)
    assert "sk-proj-" in masked and "AKIA" in masked and "ghp_" in masked


def test_wandb_dataset_artifact_metadata_and_tables_are_masked(tmp_path: Path) -> None:
    import wandb

    from finetune_wb.tracking.datasets import log_dataset

    path = _leaky_file(tmp_path)
    report = check_quality(path)
    run = wandb.init(project="quality-tests", reinit="create_new")
    log_dataset(path, run=run, split="train", name="leaky-train", quality=report, validate=False)
    run_id = run.id
    run.finish()
    art = read_run(run_dir_of(run_id)).artifact("dataset")
    meta: dict[str, Any] = art["metadata"]
    assert {e["code"]: e["n"] for e in meta["quality"]["counts"]} == report.counts
    assert meta["quality"]["ok"] is False and meta["quality"]["n_errors"] == 7
    assert_clean(json.dumps(meta))
    findings = json.loads(staged_file(art, "quality_findings.table.json").read_text())
    assert findings["columns"] == ["code", "severity", "lines", "test_lines", "message"]
    assert len(findings["data"]) == len(report.findings)
    assert_clean(json.dumps(findings))
    examples = json.loads(staged_file(art, "examples.table.json").read_text())
    assert len(examples["data"]) == 30
    assert_clean(json.dumps(examples))


def test_a_quoted_constant_answer_is_masked_too(tmp_path: Path) -> None:
    rows = [c.chat(c.filler(i), f"write to {c.EMAIL}") for i in range(12)]  # the same answer everywhere
    report = validate_file(c.write(tmp_path / "same.jsonl", rows), quality=True)
    assert "constant_answer" in report.issue_counts
    assert_clean(report.summary())
    assert_clean(report.model_dump_json())
