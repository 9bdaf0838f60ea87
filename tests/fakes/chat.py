"""A fake OpenAI chat-completions client for the evaluation engine's tests: scripted answers and faults."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import openai

from finetune_wb._retry import RetryPolicy
from finetune_wb.schema import ChatExample

FAST_RETRY = RetryPolicy(max_attempts=6, initial_wait=0.001, max_wait=0.005)


def default_answer(model: str, messages: list[dict[str, Any]]) -> str:
    """'ft' knows the answer; every other model says Yes only for even-length questions."""
    question = messages[-1]["content"]
    if model.startswith("ft"):
        return question.split("=")[-1]
    return "Yes" if len(question) % 2 == 0 else "No."


class FakeChat:
    def __init__(
        self, answer: Callable[[str, list[dict[str, Any]]], str] = default_answer, latency: float = 0.0
    ) -> None:
        self.answer = answer
        self.latency = latency
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[int, dict[str, str]]] = []  # served to the next requests, in order
        self.reject: Callable[[str, str], int | None] = lambda model, question: None
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        model, messages = body["model"], body["messages"]
        with self._lock:
            self.requests.append((model, messages[-1]["content"]))
            fault = self.faults.pop(0) if self.faults else None
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            status = self.reject(model, messages[-1]["content"])
            if fault is not None:
                status, headers = fault
                return httpx.Response(
                    status, headers=headers, json={"error": {"message": "injected", "code": None}}
                )
            if status is not None:
                return httpx.Response(
                    status, json={"error": {"message": "rejected by the fake", "code": None}}
                )
            content = self.answer(model, messages)
            return httpx.Response(
                200,
                json={
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                },
            )
        finally:
            with self._lock:
                self.in_flight -= 1

    def client(self, base_url: str = "http://fake.test/v1") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=base_url,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)),
        )


def make_examples(n: int) -> list[ChatExample]:
    out = []
    for i in range(n):
        answer = "Yes" if i % 3 else "No"
        out.append(
            ChatExample.model_validate(
                {
                    "messages": [
                        {"role": "system", "content": "Answer Yes or No."},
                        {"role": "user", "content": f"q{i}{'x' * (i % 2)}={answer}"},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
        )
    return out
