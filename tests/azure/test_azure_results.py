"""Azure's id shapes everywhere ids are parsed, and the extra columns of Azure's results.csv in W&B."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_wb.evaluation.pricing import FINE_TUNED_PRICES, price_per_million
from finetune_wb.jobs.result_file import job_metrics
from finetune_wb.tracking.sync import sync_job
from finetune_wb.validation.tokens import base_model, encoding_name_for_model
from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples
from tests.fakes.wandb_readback import read_run

AZURE_FT = "gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef-legal"


def test_azure_ids_in_tokens_and_pricing() -> None:
    assert base_model(AZURE_FT) == "gpt-4o-mini-2024-07-18"
    assert encoding_name_for_model(AZURE_FT) == encoding_name_for_model("gpt-4o-mini-2024-07-18")
    assert price_per_million(AZURE_FT) == FINE_TUNED_PRICES["gpt-4o-mini"]
    assert price_per_million("ftchkpt-0123456789abcdef") is None  # a checkpoint id does not name its base


def _azure_job_with_validation(emu: Any) -> Any:
    client = emu.azure_client()
    train = client.files.create(file=("train.jsonl", jsonl(yes_no_examples(16))), purpose="fine-tune")
    valid = client.files.create(
        file=("valid.jsonl", jsonl(yes_no_examples(6, offset=40))), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=train.id, validation_file=valid.id, suffix="legal"
    )
    return client, wait_job(client, job.id)


def test_results_csv_azure_columns_reach_wandb(finetune_emulator_azure: Any, tmp_path: Path) -> None:
    client, job = _azure_job_with_validation(finetune_emulator_azure)
    assert job.fine_tuned_model.endswith("-legal") and ".ft-" in job.fine_tuned_model
    rows = job_metrics(job, client=client)
    assert "full_valid_loss" in rows[-1] and "validation_mean_token_accuracy" in rows[0]
    result = sync_job(job.id, client=client, project="t-azure-sync")
    assert result.outcome == "synced"
    back = read_run(Path(result.run_dir or ""))
    assert any("full_valid_mean_token_accuracy" in k for k in back.summary), " ".join(sorted(back.summary))
    table = back.summary["result_file"]  # every row and column of Azure's results.csv, as a W&B Table
    assert (table["nrows"], table["ncols"]) == (len(rows), 7)
    assert back.summary["final_validation_mean_token_accuracy"] == rows[-1]["validation_mean_token_accuracy"]
