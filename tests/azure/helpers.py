"""Plain helpers for the Azure tests: a fine-tuned model on the Azure emulator, journal counts."""

from __future__ import annotations

from typing import Any

from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples

ACCOUNT_PATH = (
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/accounts/acct-1"
)


def fine_tuned_model(emu: Any, *, n: int = 12) -> str:
    """Train a small job on the emulator and return its fine-tuned model id."""
    client = emu.azure_client()
    file = client.files.create(file=("train.jsonl", jsonl(yes_no_examples(n))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    job = wait_job(client, job.id)
    assert job.status == "succeeded", job
    return str(job.fine_tuned_model)


def arm_requests(emu: Any, method: str, name: str | None = None) -> int:
    """How many ARM requests of ``method`` (on deployment ``name``, or any) the emulator answered < 400."""
    prefix = ACCOUNT_PATH + "/deployments" + (f"/{name}" if name else "")
    return sum(1 for e in emu.journal if e.method == method and e.path.startswith(prefix) and e.status < 400)
