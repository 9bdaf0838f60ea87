"""Helpers of the migration tests: a Yes/No task, fine-tunes of it on the emulator, JSONL files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples

CHAT = "/v1/chat/completions"


def fine_tune(
    client: Any, examples: list[dict[str, Any]], *, base: str = "gpt-4o-mini-2024-07-18"
) -> tuple[str, str]:
    """(fine-tuned model id, job id) of a finished emulator job trained on ``examples``."""
    uploaded = client.files.create(file=("train.jsonl", io.BytesIO(jsonl(examples))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=base, training_file=uploaded.id)
    done = wait_job(client, job.id)
    assert done.status == "succeeded", done
    return str(done.fine_tuned_model), str(job.id)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def prompts_only(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The examples without their assistant answer (prompts exported from production logs)."""
    return [{"messages": [m for m in e["messages"] if m["role"] != "assistant"]} for e in examples]


def flipped(examples: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """The examples with every ``every``-th answer flipped (Yes <-> No)."""
    out = []
    for i, e in enumerate(examples):
        msgs = [dict(m) for m in e["messages"]]
        if i % every == 0:
            msgs[-1]["content"] = "No" if msgs[-1]["content"] == "Yes" else "Yes"
        out.append({"messages": msgs})
    return out


def chat_posts(emu: Any) -> int:
    return sum(1 for e in emu.journal if e.path == CHAT and e.method == "POST")


__all__ = ["chat_posts", "fine_tune", "flipped", "prompts_only", "write_jsonl", "yes_no_examples"]
