"""Logging an evaluation to a W&B run (offline), read back through ``wandb leet inspect``."""

from __future__ import annotations

import json
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
    assert run.summary["eval/baseline/exact_match"] == report.metric(BASE, "exact_match")
    run.finish()

    (back,) = read_runs()
    assert back.job_type == "eval"
    summary = back.summary
    for model, role in ((BASE, "baseline"), (OTHER, "baseline_2")):
        assert summary[f"eval/{role}/exact_match"] == report.metric(model, "exact_match")
        assert f"eval/{role}/classification/macro_f1" in summary
        assert f"eval/{role}/exact_match/ci_low" in summary
        # wandb.plot.confusion_matrix lands as <key>_table
        assert f"eval/{role}/classification/confusion_matrix_table" in summary
    assert "eval/compare/baseline_vs_baseline_2/exact_match/p_value" in summary
    assert "eval/predictions" in summary  # the table
    assert "eval/comparisons" in summary
    config = back.config
    assert config["eval"]["evaluators"][0]["name"] == "exact_match"
    assert [m["model"] for m in config["eval"]["models"]] == [BASE, OTHER]
    assert config["models"] == {"baseline": BASE, "baseline_2": OTHER}
    assert config["lineage"]["inputs"][0]["sha256"] == "ab" * 32


def _keys_with_model_ids(back: Any, model_ids: list[str]) -> list[str]:
    keys = set(back.summary)
    for row in back.history():
        keys.update(row)
    assert "eval/predictions" in keys  # the history was read
    return sorted(k for k in keys for m in model_ids if m in k or m.replace("/", "_") in k)


def test_summary_and_history_keys_hold_no_model_id_and_the_config_holds_them(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    """Two evaluations of two fine-tunes share every key: W&B charts one against the other."""
    import wandb

    from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples
    from tests.fakes.wandb_readback import read_run, run_dir_of, staged_file

    client = finetune_emulator.client()
    fine_tunes = []
    for suffix in ("one", "two"):
        file = client.files.create(file=("train.jsonl", jsonl(yes_no_examples(12))), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=file.id, suffix=suffix)
        fine_tunes.append(wait_job(client, job.id).fine_tuned_model)
    run_ids = []
    for ft in fine_tunes:
        run = wandb.init(project="eval-keys", job_type="eval", mode="offline")
        evaluate(
            _examples(6),
            models=[ft, BASE],
            evaluators=[exact_match, classification(["Yes", "No"])],
            client=client,
            cache=tmp_path / "c.sqlite3",
            run=run,
            progress=False,
        )
        run_ids.append(run.id)
        run.finish()
    first, second = (read_run(run_dir_of(run_id)) for run_id in run_ids)
    ids = [*fine_tunes, BASE]
    for back, ft in ((first, fine_tunes[0]), (second, fine_tunes[1])):
        assert _keys_with_model_ids(back, ids) == []
        assert back.config["models"] == {"finetune": ft, "baseline": BASE}
        assert [(m["role"], m["model"]) for m in back.config["eval"]["models"]] == [
            ("finetune", ft),
            ("baseline", BASE),
        ]
    assert "eval/finetune/classification" in first.summary
    assert set(first.summary) - {"_runtime", "_step", "_timestamp"} == set(second.summary) - {
        "_runtime",
        "_step",
        "_timestamp",
    }
    # the predictions table: stable columns, one row per example and model, the predicted label
    from finetune_wb.evaluation.wandb_log import PREDICTION_COLUMNS

    (logged,) = [a for a in first.artifacts() if "-evalpredictions-" in a["name"]]
    content = json.loads(staged_file(logged, "eval/predictions.table.json").read_text())
    columns = content["columns"]
    assert columns[: len(PREDICTION_COLUMNS)] == list(PREDICTION_COLUMNS)
    assert columns[len(PREDICTION_COLUMNS) :] == ["exact_match", "classification", "classification predicted"]
    assert not any(m in c for c in columns for m in ids)
    rows = content["data"]
    assert len(rows) == 12 and {r[1] for r in rows} == {"finetune", "baseline"}
    assert {r[2] for r in rows} == {fine_tunes[0], BASE}
    assert {r[-1] for r in rows} <= {"Yes", "No", "<other>"}


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
