"""A tiny in-process fake of the fine-tuning API for tracking/sync tests (httpx.MockTransport, no sockets).

It serves exactly what sync needs with full control over the details the emulator randomises: which
steps have events, the result file, page sizes. Requests are journaled, Authorization headers included.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

API_KEY = "sk-fake-tracking-key-0123456789abcdef"


def training_lines() -> list[dict[str, Any]]:
    """Chat records of several shapes: 2..5 messages, tools, a tool call, a DPO record."""
    return [
        {
            "messages": [
                {"role": "user", "content": "Is it explicit?"},
                {"role": "assistant", "content": "Yes"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Answer Yes or No."},
                {"role": "user", "content": "Clause A"},
                {"role": "assistant", "content": "No"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Answer Yes or No."},
                {"role": "user", "content": "Clause B"},
                {"role": "assistant", "content": "thinking", "weight": 0},
                {"role": "user", "content": "Final?"},
                {"role": "assistant", "content": "Yes"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "assistant", "content": "No"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        },
    ]


def dpo_lines() -> list[dict[str, Any]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": "Say hi"}]},
            "preferred_output": [{"role": "assistant", "content": "Hi!"}],
            "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
        }
    ]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(x) for x in lines) + "\n").encode()


def result_csv(steps: range, *, base64_encoded: bool = True) -> bytes:
    rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for s in steps:
        rows.append(f"{s},{2.0 / s:.4f},{0.5 + s / 100:.3f},{2.5 / s:.4f},")
    text = "\n".join(rows) + "\n"
    return base64.b64encode(text.encode()) if base64_encoded else text.encode()


@dataclass
class FakeJob:
    id: str
    status: str = "succeeded"
    created_at: int = 1_700_000_000
    model: str = "gpt-4o-mini-2024-07-18"
    training_file: str = "file-train"
    validation_file: str | None = "file-valid"
    event_steps: list[int] = field(default_factory=lambda: [1, 2, 3])
    total_steps: int = 6
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        done = self.status in ("succeeded", "failed", "cancelled")
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": self.created_at,
            "finished_at": self.created_at + 120 if done else None,
            "model": self.model,
            "fine_tuned_model": f"ft:{self.model}:org::{self.id[-6:]}"
            if self.status == "succeeded"
            else None,
            "organization_id": "org-test",
            "result_files": [f"file-result-{self.id}"] if self.status == "succeeded" else [],
            "status": self.status,
            "trained_tokens": 4321 if self.status == "succeeded" else None,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
                },
            },
            "seed": 42,
            "error": self.error,
            "metadata": {"team": "legal"},
        }

    def events(self) -> list[dict[str, Any]]:
        """Newest first, as the API returns them."""
        out = [
            {
                "id": f"{self.id}-ev-created",
                "object": "fine_tuning.job.event",
                "created_at": self.created_at,
                "level": "info",
                "message": "Created fine-tuning job",
                "type": "message",
            }
        ]
        for s in self.event_steps:
            out.append(
                {
                    "id": f"{self.id}-ev-{s}",
                    "object": "fine_tuning.job.event",
                    "created_at": self.created_at + s,
                    "level": "info",
                    "message": f"Step {s}/{self.total_steps}: training loss={2.0 / s:.4f}",
                    "type": "metrics",
                    "data": {
                        "step": s,
                        "train_loss": round(2.0 / s, 4),
                        "train_mean_token_accuracy": 0.5 + s / 100,
                        "total_steps": self.total_steps,
                    },
                }
            )
        return list(reversed(out))


class FakeFineTuneAPI:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.jobs: list[FakeJob] = []  # oldest first
        self.files: dict[str, bytes] = dict(files or {})
        self.journal: list[tuple[str, str, dict[str, str]]] = []
        self.authorizations: set[str] = set()
        self.faults: list[tuple[str, str, int]] = []  # (method, path, status), each answered once

    def fail_once(self, method: str, path: str, status: int) -> None:
        """Answer the next ``method path`` request with ``status`` (and ``retry-after-ms: 0``, so a retry
        does not wait), then serve it normally again. Several calls queue several failures."""
        self.faults.append((method, path, status))

    def add_job(self, job: FakeJob) -> FakeJob:
        self.jobs.append(job)
        if job.status == "succeeded":
            self.files[f"file-result-{job.id}"] = result_csv(range(1, job.total_steps + 1))
        return job

    def client(
        self, api_key: str = API_KEY, base_url: str = "http://fake-openai.invalid/v1", **kwargs: Any
    ) -> Any:
        """An ``openai.OpenAI`` served by this fake (extra keyword arguments go to the client)."""
        import openai

        http = httpx.Client(transport=httpx.MockTransport(self.handle))
        return openai.OpenAI(api_key=api_key, base_url=base_url, http_client=http, max_retries=0, **kwargs)

    def _page(self, items: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        limit = int(params.get("limit", 20))
        after = params.get("after")
        start = 0
        if after:
            ids = [i["id"] for i in items]
            start = ids.index(after) + 1
        chunk = items[start : start + limit]
        return {"object": "list", "data": chunk, "has_more": start + limit < len(items)}

    def handle(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        path = request.url.path
        self.journal.append((request.method, path, params))
        self.authorizations.add(request.headers.get("authorization", ""))
        for fault in self.faults:
            if fault[:2] == (request.method, path):
                self.faults.remove(fault)
                return httpx.Response(
                    fault[2],
                    headers={"retry-after-ms": "0"},
                    json={
                        "error": {"message": f"injected {fault[2]}", "type": "x", "param": None, "code": None}
                    },
                )
        parts = path.strip("/").split("/")  # v1, fine_tuning, jobs, id, events
        jobs = {j.id: j for j in self.jobs}
        if parts[1:3] == ["fine_tuning", "jobs"]:
            if len(parts) == 3:
                newest_first = [j.to_json() for j in reversed(self.jobs)]
                return httpx.Response(200, json=self._page(newest_first, params))
            job = jobs.get(parts[3])
            if job is None:
                return httpx.Response(
                    404,
                    json={
                        "error": {
                            "message": "no such job",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": None,
                        }
                    },
                )
            if len(parts) == 4:
                return httpx.Response(200, json=job.to_json())
            if parts[4] == "events":
                return httpx.Response(200, json=self._page(job.events(), params))
            if parts[4] == "checkpoints":
                cps = (
                    [
                        {
                            "id": f"ftckpt-{job.id}-{s}",
                            "object": "fine_tuning.job.checkpoint",
                            "created_at": job.created_at + s,
                            "fine_tuned_model_checkpoint": f"ft:{job.model}:org::{job.id[-6:]}:ckpt-step-{s}",
                            "fine_tuning_job_id": job.id,
                            "metrics": {"step": s, "train_loss": 2.0 / s},
                            "step_number": s,
                        }
                        for s in (job.total_steps, job.total_steps // 2)
                    ]
                    if job.status == "succeeded"
                    else []
                )
                return httpx.Response(200, json=self._page(cps, params))
        if parts[1] == "files" and len(parts) == 4 and parts[3] == "content":
            data = self.files.get(parts[2])
            if data is None:
                return httpx.Response(
                    404,
                    json={
                        "error": {
                            "message": "no such file",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": None,
                        }
                    },
                )
            return httpx.Response(200, content=data)
        return httpx.Response(
            404, json={"error": {"message": f"unhandled {path}", "type": "x", "param": None, "code": None}}
        )
