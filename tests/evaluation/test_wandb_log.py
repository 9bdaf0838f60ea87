"""Logging an evaluation to a W&B run (offline), read back through ``wandb leet inspect``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import classification, evaluate, exact_match
from finetune_wb.schema import ChatExample

BASE = "gpt-4o-mini-2024-07-18"
OTHER = "gpt-4.1-nano-2025-04-14"


def _examples(n: int) -> list[ChatExample]:
    return [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "user", "content": f"Clause {i}: is it marked?"},
                    {"role": "assistant", "content": "Yes" if i % 3 else "No"},
                ]
            }
        )
        for i in range(n)
    ]


def test_eval_run_gets_table_summary_comparison_confusion_matrix_and_lineage(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    import wandb

    from finetune_wb.tracking import ArtifactRef
    from tests.fakes.wandb_readback import read_runs

    dataset = ArtifactRef(name="test-data", type="dataset", digest="ab" * 32)
    run = wandb.init(project="eval-test", job_type="eval", mode="offline")
    report = evaluate(
        _examples(9),
        models=[BASE, OTHER],
        evaluators=[exact_match, classification(["Yes", "No"])],
        client=finetune_emulator.client(),
        cache=tmp_path / "c.sqlite3",
        run=run,
        lineage=[dataset],
        progress=False,
    )
    # the run is the caller's: still open, still usable
    run.log({"after": 1})
    assert run.summary[f"eval/{BASE}/exact_match"] == report.metric(BASE, "exact_match")
    run.finish()

    (back,) = read_runs()
    assert back.job_type == "eval"
    summary = back.summary
    for model in (BASE, OTHER):
        assert summary[f"eval/{model}/exact_match"] == report.metric(model, "exact_match")
        assert f"eval/{model}/classification/macro_f1" in summary
        assert f"eval/{model}/exact_match/ci_low" in summary
    assert f"eval/compare/{BASE}_vs_{OTHER}/exact_match/p_value" in summary
    assert "eval/predictions" in summary  # the table
    assert "eval/comparisons" in summary
    for model in (BASE, OTHER):  # wandb.plot.confusion_matrix lands as <key>_table
        assert f"eval/{model}/classification/confusion_matrix_table" in summary
    config = back.config
    assert config["eval"]["evaluators"][0]["name"] == "exact_match"
    assert [m["model"] for m in config["eval"]["models"]] == [BASE, OTHER]
    assert config["lineage"]["inputs"][0]["sha256"] == "ab" * 32


def _write(path: Path, n: int) -> Path:
    path.write_text("".join(ex.model_dump_json(exclude_none=True) + "\n" for ex in _examples(n)))
    return path


def test_examples_from_a_logged_dataset_artifact_ref(finetune_emulator: Any, tmp_path: Path) -> None:
    import wandb

    from finetune_wb.tracking import log_dataset

    data = _write(tmp_path / "test.jsonl", 5)
    run = wandb.init(project="eval-test", job_type="eval", mode="offline")
    ref = log_dataset(data, run=run, split="test", validate=False)
    report = evaluate(
        ref,
        models=BASE,
        client=finetune_emulator.client(),
        cache=tmp_path / "c.sqlite3",
        run=run,
        progress=False,
    )
    assert len(report.examples) == 5 and report.source.startswith("artifact ")
    lineage = run.config["lineage"]["inputs"]
    assert any(entry["sha256"] == ref.digest for entry in lineage)
    run.finish()

    data.write_text(
        data.read_text().replace("Clause 0", "Changed clause")
    )  # the local copy no longer matches
    with pytest.raises(EvaluationError, match="not on this machine"):
        evaluate(ref, models=BASE, client=finetune_emulator.client(), cache=None, progress=False)


def test_examples_from_a_wandb_artifact_object(finetune_emulator: Any, tmp_path: Path) -> None:
    import wandb

    artifact = wandb.Artifact("held-out", type="dataset")
    artifact.add_file(str(_write(tmp_path / "held_out.jsonl", 4)))
    report = evaluate(
        artifact, models=BASE, client=finetune_emulator.client(), cache=tmp_path / "c.sqlite3", progress=False
    )
    assert len(report.examples) == 4 and report.source == "artifact held-out"


def test_the_confusion_plot_shows_the_counts_of_the_metrics_own_matrix() -> None:
    from collections import Counter

    from finetune_wb.evaluation.stats import classification_metrics
    from finetune_wb.evaluation.wandb_log import confusion_pairs

    gold = ["Yes", "Yes", "No", "No", "No", "yes"]
    predicted = ["Yes", "No", "No", "<other>", "No", "Yes"]
    details = classification_metrics(gold, predicted, labels=["Yes", "No"])
    y_true, preds = confusion_pairs(details)
    names = details["matrix_labels"]
    # every scored row once, with its own labels ("yes" and "<other>" included)
    plotted = Counter((names[t], names[p]) for t, p in zip(y_true, preds, strict=True))
    assert plotted == Counter(zip(gold, predicted, strict=True))
    assert confusion_pairs({}) == ([], [])
