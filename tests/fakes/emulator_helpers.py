"""Helpers shared by the emulator tests (not fixtures: plain functions)."""

from __future__ import annotations

import json
import time
from typing import Any

TOPICS = [
    "confidentiality",
    "termination",
    "payment",
    "liability",
    "warranty",
    "assignment",
    "audit",
    "insurance",
    "governing law",
    "non-compete",
    "indemnity",
    "notice",
]


def yes_no_examples(n: int, *, offset: int = 0) -> list[dict[str, Any]]:
    """A Yes/No task with distinct prompts: does clause i mention a topic?"""
    out = []
    for i in range(offset, offset + n):
        topic = TOPICS[i % len(TOPICS)]
        other = TOPICS[(i * 7 + 3) % len(TOPICS)]
        answer = "Yes" if i % 3 != 0 else "No"
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "Answer with Yes or No."},
                    {
                        "role": "user",
                        "content": f"Clause {i} covers {other} and {topic} terms for party {i * 13 % 97}. "
                        f"Does clause {i} mention {topic}?",
                    },
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return out


def jsonl(examples: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(e) for e in examples) + "\n").encode()


def wait_job(client: Any, job_id: str, *, timeout: float = 20.0) -> Any:
    """Poll until the job is finished (the session emulator runs at a fast pace)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {timeout} s"
        time.sleep(0.02)
