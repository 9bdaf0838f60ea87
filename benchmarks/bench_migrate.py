"""Benchmark of ``snapshot`` + ``migrate`` against the local emulator, next to a plain ``evaluate``.

On ``--rows`` generated Yes/No prompts (default 5,000) and 3 candidates (a fine-tune on another base, the
same base model with fixed few-shot examples, and with retrieved examples):

1. ``snapshot`` of a fine-tune vs a plain ``evaluate`` of the same prompts on the same model (each with a
   fresh answer cache): throughput and the snapshot's overhead in %;
2. ``migrate`` over the 3 candidates vs plain ``evaluate`` calls of the same requests (the candidates'
   messages, built once outside the timing): throughput and overhead in %;
3. the same ``snapshot`` and ``migrate`` again: the chat requests they send (from the emulator's journal;
   it should be 0).

    python benchmarks/bench_migrate.py [--rows 5000] [--train 200] [--latency 0.0] [--repeat 1] [--json]

A quick run: ``--rows 300``. On a busy machine use ``--repeat 2`` or more: each side is timed that many
times, alternating, each time with a fresh cache, and the best time of each side is compared. The emulator runs in this process (``run_emulator``), so its CPU time is shared
with the client; both sides of each comparison pay it alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHAT = "/v1/chat/completions"
TOPICS = [
    "confidentiality",
    "termination",
    "payment",
    "liability",
    "warranty",
    "assignment",
    "audit",
    "notice",
]


def rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(offset, offset + n):
        topic, other = TOPICS[i % len(TOPICS)], TOPICS[(i * 5 + 3) % len(TOPICS)]
        answer = "Yes" if i % 3 else "No"
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "Answer with Yes or No."},
                    {
                        "role": "user",
                        "content": f"Clause {i} covers {other} terms for party {i * 13 % 997}. "
                        f"Does clause {i} mention {topic}?",
                    },
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return out


def write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def fine_tune(client: Any, train: Path, base: str) -> str:
    uploaded = client.files.create(file=train.open("rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=base, training_file=uploaded.id)
    while True:
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed", "cancelled"):
            assert job.status == "succeeded", job
            return str(job.fine_tuned_model)
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="golden prompts (default 5000)")
    parser.add_argument("--train", type=int, default=200, help="training examples (default 200)")
    parser.add_argument("--latency", type=float, default=0.0, help="added chat latency in seconds")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each side this many times, alternating; report the best"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from finetune_wb.emulator import run_emulator
    from finetune_wb.evaluation import evaluate
    from finetune_wb.migration import build_candidates, migrate, snapshot

    tmp = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    train = write(tmp / "train.jsonl", rows(args.train))
    prompts = write(tmp / "prompts.jsonl", rows(args.rows, offset=args.train))
    out: dict[str, Any] = {"rows": args.rows, "candidates": 3, "latency_s": args.latency}
    with run_emulator(pace=0.01) as emu:
        client = emu.client()
        if args.latency:
            emu.inject_latency(args.latency, path=CHAT)
        ft = fine_tune(client, train, "gpt-4o-mini-2024-07-18")
        other = fine_tune(client, train, "gpt-4.1-nano-2025-04-14")
        specs = [other, "gpt-4.1-mini+fewshot:4", "gpt-4.1-mini+retrieval:4"]

        def posts() -> int:
            return sum(1 for e in emu.journal if e.path == CHAT and e.method == "POST")

        opts: dict[str, Any] = {"client": client, "progress": False}
        # warm-up (imports, connections, the fine-tunes' models loaded in the emulator): not timed
        warm = write(tmp / "warm.jsonl", rows(20, offset=10**6))
        for model in (ft, other, "gpt-4.1-mini"):
            evaluate(warm, models=[model], cache=None, **opts)
        plain_snap = snap = plain_mig = mig = float("inf")
        from finetune_wb.migration.golden import read_golden

        report = None
        for i in range(max(1, args.repeat)):
            t = time.perf_counter()
            evaluate(prompts, models=[ft], cache=tmp / f"plain-snap-{i}.db", **opts)
            plain_snap = min(plain_snap, time.perf_counter() - t)
            t = time.perf_counter()
            result = snapshot(ft, prompts, out=tmp / "golden.jsonl", cache=tmp / f"snap-{i}.db", **opts)
            snap = min(snap, time.perf_counter() - t)
            assert result.complete, result.first_error
            gold = read_golden(tmp / "golden.jsonl")
            built = []
            for cand in build_candidates(specs, train=train):  # the same requests, built outside the timing
                examples = [
                    {"messages": [*cand.messages_for(r.messages), {"role": "assistant", "content": r.answer}]}
                    for r in gold.rows
                ]
                built.append((cand, examples))
            t = time.perf_counter()
            for cand, examples in built:
                evaluate(examples, models=[cand.spec.model], cache=tmp / f"plain-mig-{i}.db", **opts)
            plain_mig = min(plain_mig, time.perf_counter() - t)
            t = time.perf_counter()
            report = migrate(tmp / "golden.jsonl", specs, train=train, cache=tmp / f"mig-{i}.db", **opts)
            mig = min(mig, time.perf_counter() - t)
        assert report is not None
        last = max(1, args.repeat) - 1
        out["snapshot"] = {
            "seconds": round(snap, 3),
            "rows_per_s": round(args.rows / snap, 1),
            "plain_evaluate_seconds": round(plain_snap, 3),
            "overhead_pct": round(100 * (snap - plain_snap) / plain_snap, 1),
        }
        requests = args.rows * 3
        out["migrate"] = {
            "seconds": round(mig, 3),
            "requests_per_s": round(requests / mig, 1),
            "plain_evaluate_seconds": round(plain_mig, 3),
            "overhead_pct": round(100 * (mig - plain_mig) / plain_mig, 1),
            "recommendation": report.recommendation,
        }
        before = posts()
        t = time.perf_counter()
        snapshot(ft, prompts, out=tmp / "golden.jsonl", cache=tmp / f"snap-{last}.db", **opts)
        migrate(tmp / "golden.jsonl", specs, train=train, cache=tmp / f"mig-{last}.db", **opts)
        out["rerun"] = {"seconds": round(time.perf_counter() - t, 3), "chat_requests": posts() - before}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        s, m, r = out["snapshot"], out["migrate"], out["rerun"]
        print(
            f"snapshot {args.rows} prompts: {s['seconds']} s ({s['rows_per_s']} rows/s); plain evaluate "
            f"{s['plain_evaluate_seconds']} s; overhead {s['overhead_pct']} %"
        )
        print(
            f"migrate 3 candidates x {args.rows}: {m['seconds']} s ({m['requests_per_s']} requests/s); plain "
            f"evaluate {m['plain_evaluate_seconds']} s; overhead {m['overhead_pct']} %; recommendation "
            f"{m['recommendation']}"
        )
        print(f"re-run of both: {r['seconds']} s, {r['chat_requests']} chat request(s)")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
