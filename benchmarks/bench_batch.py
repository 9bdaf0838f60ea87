"""Benchmark of batch-mode evaluation against the emulator: submit, and read results back into the cache.

For ``--rows`` generated NDA-clause prompts x 2 models (default 100,000 x 2 = 200,000 requests):

1. **submit**: the cache lookups, writing the shards to disk (50,000 requests each), uploading them
   (purpose ``batch``) and creating the batches — the time, and with ``--trace`` the peak of Python memory
   allocated during it (tracemalloc, above what the prompts already take);
2. the emulator answers every line (its own process, not timed here);
3. **collect**: downloading the output files, parsing them line by line and committing every answer to the
   answer cache — the time and (``--trace``) the peak memory.

    python benchmarks/bench_batch.py [--rows 100000] [--trace] [--json]

Run it at two sizes with ``--trace`` to see that memory stays flat: the requests are streamed to disk shard
by shard, and results are read line by line; what grows with the rows is only the list of answer cache
keys (64 characters per request). ``--trace`` slows Python down: take times from a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14")


SERVER = """
import threading
from finetune_wb.emulator import ManualClock, run_emulator
with run_emulator(clock=ManualClock()) as emu:
    print(emu.base_url, flush=True)
    threading.Event().wait()
"""


class RemoteEmulator:
    """An emulator on a hand-driven clock in its own process (its CPU and memory are not the client's);
    its batches move only when :meth:`advance` says so."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError(f"the emulator did not start (said {self.base_url!r})")

    def advance(self, seconds: float) -> None:
        import httpx

        admin = self.base_url.removesuffix("/v1") + "/_emulator"
        httpx.post(f"{admin}/clock/advance", json={"seconds": seconds}).raise_for_status()

    def client(self) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="sk-test")

    def __enter__(self) -> RemoteEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def build_prompts(n: int) -> list[list[dict[str, Any]]]:
    from finetune_wb.data.demo_dataset import DEMO_SYSTEM_PROMPT, DEMO_USER_TEMPLATE, generate_clauses

    clauses = generate_clauses(min(n, 400), seed=7)  # distinct prompts: each carries its row number
    return [
        [
            {"role": "system", "content": DEMO_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": DEMO_USER_TEMPLATE.format(text=clauses[i % len(clauses)]["text"]) + f" (#{i})",
            },
        ]
        for i in range(n)
    ]


async def phase(emu: Any, cache_path: Path, prompts: list[Any], *, wait: bool) -> tuple[Any, float]:
    from finetune_wb._retry import RetryPolicy
    from finetune_wb.evaluation.answering import Answerer
    from finetune_wb.evaluation.batch.runner import run_batches
    from finetune_wb.evaluation.batch.settings import BatchOptions
    from finetune_wb.evaluation.cache import AnswerCache
    from finetune_wb.evaluation.targets import ModelTarget, ResolvedModel

    store = AnswerCache(cache_path)
    retry = RetryPolicy(max_attempts=4)
    answerer = Answerer(
        concurrency=8, rpm=None, tpm=None, cache=store, retry=retry, default_client=emu.client()
    )
    resolved = []
    for m in MODELS:
        aclient, base_url = answerer.client_for(None)
        resolved.append(ResolvedModel(target=ModelTarget(m), label=m, aclient=aclient, base_url=base_url))
    started = time.perf_counter()
    try:
        outcome = await run_batches(
            resolved=resolved,
            prompts=prompts,
            params={"max_tokens": 16, "temperature": 0},
            cache=store,
            settings=BatchOptions(wait=wait, poll_interval=0.5, max_poll_interval=2.0),
            retry=retry,
            progress=False,
            name="bench_batch",
        )
    finally:
        elapsed = time.perf_counter() - started
        await answerer.aclose()
        store.close()
    return outcome, elapsed


def measured(coro_factory: Any, trace: bool) -> tuple[Any, float, float | None]:
    if trace:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    outcome, elapsed = asyncio.run(coro_factory())
    peak = None
    if trace:
        peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
        tracemalloc.stop()
    return outcome, elapsed, peak


def run(rows: int, *, trace: bool) -> dict[str, Any]:
    prompts = build_prompts(rows)
    figures: dict[str, Any] = {
        "rows": rows,
        "models": len(MODELS),
        "requests": rows * len(MODELS),
        "trace": trace,
    }
    import openai  # noqa: F401  (imported before the clock starts: not part of the figures)

    with tempfile.TemporaryDirectory() as tmp, RemoteEmulator() as emu:
        cache = Path(tmp) / "cache.sqlite3"
        emu.client().models.list()  # warm: the first request's set-up is not part of the figures
        outcome, elapsed, peak = measured(lambda: phase(emu, cache, prompts, wait=False), trace)
        figures["batches"] = len(outcome.summaries)
        figures["submit_s"] = round(elapsed, 2)
        figures["submit_peak_mib"] = None if peak is None else round(peak, 1)
        started = time.perf_counter()
        client = emu.client()
        emu.advance(60)
        for summary in outcome.summaries:  # the emulator answers each batch when it is next read
            while client.batches.retrieve(summary.id, timeout=600).status not in ("completed", "failed"):
                time.sleep(0.2)
        figures["emulator_answering_s"] = round(time.perf_counter() - started, 2)
        outcome, elapsed, peak = measured(lambda: phase(emu, cache, prompts, wait=True), trace)
        figures["collect_s"] = round(elapsed, 2)
        figures["collect_peak_mib"] = None if peak is None else round(peak, 1)
        figures["answers_collected"] = sum(s.n_collected for s in outcome.summaries)
        figures["collect_per_answer_us"] = round(elapsed / max(figures["answers_collected"], 1) * 1e6, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="prompts per model (default 100,000)")
    parser.add_argument("--trace", action="store_true", help="measure peak Python memory (slower)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.rows, trace=args.trace)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
