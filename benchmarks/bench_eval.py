"""Benchmark of the evaluation engine against the local emulator with a 100 ms chat latency.

In one run, on 300 generated NDA-clause examples:

1. the seed's serial loop (one ``client.chat.completions.create`` after another) vs ``evaluate`` at its
   default settings — the speed-up;
2. a server-side RPM limit with the same ``rpm`` given to ``evaluate`` — the share of the limit achieved,
   the 429s seen and the rows lost;
3. a re-run of a finished evaluation — the requests it makes (from the emulator's journal).

    python benchmarks/bench_eval.py [--n 300] [--latency 0.1] [--rpm 240] [--in-process] [--json]

The emulator runs in its own process by default (``finetune-wb emulator``, driven through its admin routes:
the same ``inject_latency`` / ``rate_limit`` / journal as the in-process API), as a real server would: its CPU
time is then not charged to the client being measured. ``--in-process`` uses ``run_emulator()`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

MODEL = "gpt-4o-mini-2024-07-18"
CHAT = "/v1/chat/completions"


def build_examples(n: int) -> list[Any]:
    from finetune_wb.data.demo_dataset import DEMO_SYSTEM_PROMPT, DEMO_USER_TEMPLATE, generate_clauses
    from finetune_wb.schema import ChatExample

    return [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "system", "content": DEMO_SYSTEM_PROMPT},
                    {"role": "user", "content": DEMO_USER_TEMPLATE.format(text=r["text"])},
                    {"role": "assistant", "content": r["answer"]},
                ]
            }
        )
        for r in generate_clauses(n, seed=7)
    ]


class RemoteEmulator:
    """``finetune-wb emulator`` in a subprocess, with the in-process emulator's controls over HTTP."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finetune_wb", "emulator", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError(f"the emulator did not start (said {self.base_url!r})")
        self.admin = self.base_url.removesuffix("/v1") + "/_emulator"

    def inject_latency(self, seconds: float, path: str | None = None) -> None:
        httpx.post(f"{self.admin}/latency", json={"seconds": seconds, "path": path}).raise_for_status()

    def rate_limit(self, rpm: int | None = None, path: str = CHAT) -> None:
        httpx.post(f"{self.admin}/rate_limit", json={"rpm": rpm, "path": path}).raise_for_status()

    @property
    def journal(self) -> list[Any]:
        data = httpx.get(f"{self.admin}/journal").json()["data"]
        return [SimpleNamespace(**e) for e in data]

    def client(self) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="sk-test")

    def __enter__(self) -> RemoteEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def chat_requests(emu: Any) -> list[Any]:
    return [e for e in emu.journal if e.path == CHAT and e.method == "POST"]


def seed_serial_loop(client: Any, examples: list[Any]) -> list[str]:
    """What the seed did: ask one prompt, wait for the answer, ask the next."""
    outputs = []
    for ex in examples:
        response = client.chat.completions.create(
            model=MODEL, messages=ex.prompt_messages(), max_tokens=256, temperature=0
        )
        outputs.append(response.choices[0].message.content)
    return outputs


def run(n: int, latency: float, rpm: int, *, in_process: bool = False) -> dict[str, Any]:
    from finetune_wb.emulator import run_emulator
    from finetune_wb.evaluation import evaluate

    examples = build_examples(n)
    figures: dict[str, Any] = {
        "n_examples": n,
        "latency_s": latency,
        "model": MODEL,
        "in_process": in_process,
    }
    server = run_emulator() if in_process else RemoteEmulator()
    with tempfile.TemporaryDirectory() as tmp, server as emu:
        emu.inject_latency(latency, path=CHAT)
        client = emu.client()
        # Warm-up (not timed): one-time imports and connection set-up for both contenders, so the figures
        # compare steady-state throughput rather than who imported numpy first.
        warm = build_examples(2)[:1]
        seed_serial_loop(client, warm)
        evaluate(warm, models=MODEL, client=client, cache=None, progress=False)

        start = time.perf_counter()
        serial_outputs = seed_serial_loop(client, examples)
        figures["serial_seconds"] = time.perf_counter() - start

        before = len(chat_requests(emu))
        start = time.perf_counter()
        report = evaluate(
            examples, models=MODEL, client=client, cache=Path(tmp) / "a.sqlite3", progress=False
        )
        figures["evaluate_seconds"] = time.perf_counter() - start
        figures["evaluate_requests"] = len(chat_requests(emu)) - before
        figures["speedup"] = figures["serial_seconds"] / figures["evaluate_seconds"]
        figures["same_answers_as_serial"] = [r.output for r in report.rows] == serial_outputs
        figures["evaluate_unanswered"] = report.n_unanswered

        before = len(chat_requests(emu))
        start = time.perf_counter()
        again = evaluate(examples, models=MODEL, client=client, cache=Path(tmp) / "a.sqlite3", progress=False)
        figures["rerun_seconds"] = time.perf_counter() - start
        figures["rerun_requests"] = len(chat_requests(emu)) - before
        figures["rerun_cached_rows"] = again.models[0].n_cached

        emu.rate_limit(rpm=rpm, path=CHAT)
        before = len(chat_requests(emu))
        start = time.perf_counter()
        limited = evaluate(
            examples, models=MODEL, client=client, cache=Path(tmp) / "b.sqlite3", rpm=rpm, progress=False
        )
        elapsed = time.perf_counter() - start
        seen = chat_requests(emu)[before:]
        figures["rpm_limit"] = rpm
        figures["rpm_seconds"] = elapsed
        figures["rpm_achieved"] = limited.models[0].n_answered / elapsed * 60
        figures["rpm_share_of_limit"] = figures["rpm_achieved"] / rpm
        figures["rpm_429s"] = sum(1 for e in seen if e.status == 429)
        figures["rpm_lost_rows"] = limited.n_unanswered
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--rpm",
        type=int,
        default=240,
        help="server and client RPM (default 240: the 300 requests span more than one 60-s window, so the server limit binds)",
    )
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    f = run(args.n, args.latency, args.rpm, in_process=args.in_process)
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        where = "in this process" if f["in_process"] else "in its own process"
        print(
            f"{f['n_examples']} examples, {f['latency_s'] * 1000:.0f} ms per answer, model {f['model']}, "
            f"emulator {where}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  seed serial loop        {f['serial_seconds']:7.2f} s")
        print(
            f"  evaluate (defaults)     {f['evaluate_seconds']:7.2f} s   {f['speedup']:.1f}x faster, "
            f"{f['evaluate_requests']} requests, same answers: {f['same_answers_as_serial']}"
        )
        print(
            f"  re-run (cached)         {f['rerun_seconds']:7.2f} s   {f['rerun_requests']} requests, "
            f"{f['rerun_cached_rows']} rows from the cache"
        )
        print(
            f"  server limit {f['rpm_limit']} rpm, evaluate(rpm={f['rpm_limit']}): {f['rpm_seconds']:.1f} s, "
            f"{f['rpm_achieved']:.0f} rpm achieved ({f['rpm_share_of_limit']:.0%} of the limit), "
            f"{f['rpm_429s']} x 429, {f['rpm_lost_rows']} rows lost"
        )
    ok = (
        f["speedup"] >= 20
        and f["rpm_share_of_limit"] >= 0.9
        and f["rpm_lost_rows"] == 0
        and f["rerun_requests"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
