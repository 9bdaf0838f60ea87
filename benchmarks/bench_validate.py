"""Benchmark: the seed notebook's validation approach vs ``finetune_wb.validate_file``.

Generates a synthetic chat file (200,000 examples, ~124 MB, in a temporary directory), then runs, each in a
fresh Python process so that peak memory is measured on its own:

* the seed's approach: read the whole file with ``json.loads`` into a list, run the format checks, then
  tiktoken ``encode`` every message value one at a time to get token counts (the encoding is the one
  ``validate_file`` picks for the model, loaded with ``tiktoken.get_encoding``; the child imports nothing
  from finetune_wb);
* ``validate_file`` (streaming, each distinct string counted once through a bounded cache).

Wall time is measured around each child process (start-up and imports included), CPU time is the
child's user + system time including its token-counting worker (``os.wait4``). Peak memory is the largest
sum of the proportional set size (PSS, ``/proc/PID/smaps_rollup``) of the child and its worker, sampled
every 10 ms: a forked worker shares the tokenizer's pages with the validator, which PSS counts once and a
per-process RSS would count twice. The maximum RSS of each process is printed too. A third child that only
imports tiktoken and loads the encoding shows the floor both approaches share. The two are run
``--repeat`` times, interleaved, and the fastest run of each is compared, because other work on a shared
machine only ever adds time. Usage::

    python benchmarks/bench_validate.py [--examples 200000] [--repeat 3] [--serial] [--json]

``--examples 50000 --repeat 1`` is a quick run (~15 s); ``--serial`` turns the token worker off
(``FINETUNE_WB_PARALLEL_TOKENS=0``) to show what it adds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from finetune_wb.validation.tokens import encoding_name_for_model

SYSTEM_PROMPTS = [
    "You are a careful contract analyst. Answer Yes or No: does the clause require that all confidential "
    "information be expressly identified by the disclosing party?",
    "You classify customer support tickets into one of five queues. Reply with the queue name only.",
    "You are a terse assistant that extracts the total amount from an invoice and answers with a number.",
    "Decide whether the review is positive or negative. Give one word and then a one-sentence reason.",
]
WORDS = [
    "agreement",
    "party",
    "information",
    "confidential",
    "disclose",
    "receiving",
    "shall",
    "written",
    "notice",
    "term",
    "clause",
    "obligation",
    "purpose",
    "business",
    "affiliate",
    "employee",
    "consultant",
    "return",
    "destroy",
    "copy",
    "material",
    "law",
    "court",
    "invoice",
    "total",
    "amount",
    "due",
    "customer",
    "ticket",
    "refund",
    "shipping",
    "delayed",
    "order",
    "account",
    "password",
    "review",
    "product",
    "quality",
    "price",
    "battery",
    "screen",
    "delivery",
    "support",
    "friendly",
    "slow",
    "broken",
    "excellent",
    "poor",
]
ANSWERS = ["Yes", "No", "Billing", "Shipping", "Technical", "positive", "negative"]


def generate(path: Path, n_examples: int, seed: int = 0) -> int:
    """Write ``n_examples`` chat examples; return the file size in bytes."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_examples):
            user = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))).capitalize() + "."
            answer = rng.choice(ANSWERS)
            if rng.random() < 0.5:
                answer += ". " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "."
            example = {
                "messages": [
                    {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": answer},
                ]
            }
            f.write(json.dumps(example))
            f.write("\n")
    return path.stat().st_size


# The seed notebook's approach (OpenAI cookbook data-prep checks), written out for the benchmark.
SEED_SCRIPT = r"""
import json, sys, time
from collections import defaultdict
import tiktoken

path, model, encoding_name = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
encoding = tiktoken.get_encoding(encoding_name)
with open(path, encoding="utf-8") as f:
    dataset = [json.loads(line) for line in f]
format_errors = defaultdict(int)
for ex in dataset:
    if not isinstance(ex, dict):
        format_errors["data_type"] += 1
        continue
    messages = ex.get("messages", None)
    if not messages:
        format_errors["missing_messages_list"] += 1
        continue
    for message in messages:
        if "role" not in message or "content" not in message:
            format_errors["message_missing_key"] += 1
        if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
            format_errors["message_unrecognized_key"] += 1
        if message.get("role", None) not in ("system", "user", "assistant", "function"):
            format_errors["unrecognized_role"] += 1
        content = message.get("content", None)
        function_call = message.get("function_call", None)
        if (not content and not function_call) or not isinstance(content, str):
            format_errors["missing_content"] += 1
    if not any(message.get("role", None) == "assistant" for message in messages):
        format_errors["example_missing_assistant_message"] += 1
total = []
assistant = []
for ex in dataset:
    messages = ex["messages"]
    n = 0
    for message in messages:
        n += 3
        for key, value in message.items():
            n += len(encoding.encode(value))
            if key == "name":
                n += 1
    total.append(n + 3)
    assistant.append(sum(len(encoding.encode(m["content"])) for m in messages if m["role"] == "assistant"))
elapsed = time.perf_counter() - t0
print(json.dumps({"n": len(dataset), "tokens": sum(total), "assistant": sum(assistant), "errors": sum(format_errors.values()), "inner_seconds": elapsed}))
"""

OURS_SCRIPT = r"""
import json, sys, time
from finetune_wb.validation import parallel_tokens
from finetune_wb.validation.validate import validate_file

workers = []
start = parallel_tokens.start
def spy(*args, **kwargs):
    pc = start(*args, **kwargs)
    workers.append(pc)
    return pc
parallel_tokens.start = spy

path, model = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
report = validate_file(path, model=model)
assert report.tokens.encoding == sys.argv[3], report.tokens.encoding
elapsed = time.perf_counter() - t0
pc = workers[0] if workers else None
print(json.dumps({"n": report.n_examples, "tokens": report.tokens.total, "assistant": round(report.tokens.assistant_per_example.mean * report.n_examples), "errors": report.n_errors, "inner_seconds": elapsed,
    "lines_from_worker": pc.n_from_worker if pc else 0, "wait_seconds": pc.wait_seconds if pc else 0.0}))
"""


# The floor both share: a fresh interpreter that imports tiktoken and loads the same encoding as the seed
# does, and nothing else.
BASELINE_SCRIPT = r"""
import json, sys, time
import tiktoken

t0 = time.perf_counter()
encoding = tiktoken.get_encoding(sys.argv[3])
print(json.dumps({"n": 0, "tokens": 0, "assistant": 0, "errors": 0, "inner_seconds": time.perf_counter() - t0}))
"""


def _pss_kib(pid: int) -> int:
    """PSS of one process in KiB (0 once it is gone or where /proc has no smaps_rollup)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return [pid]
    return [pid] + [p for kid in kids for p in _tree(kid)]


class PeakPss:
    """Samples the summed PSS of a process and its descendants every 10 ms; ``peak_kib`` is the largest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            self.max_processes = max(self.max_processes, len(pids))
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(p) for p in pids))
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_child(script: str, path: Path, model: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``script`` in a fresh interpreter; return its output plus wall and CPU seconds and peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path), model, encoding_name_for_model(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    sampler = PeakPss(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss_kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    result["wall_seconds"] = wall
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the worker's included (it is waited for)
    result["peak_rss_mib"] = rss_kib / 1024  # the largest single process
    result["peak_pss_mib"] = sampler.peak_kib / 1024 or result["peak_rss_mib"]
    result["processes"] = sampler.max_processes
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--model", default="gpt-4o-mini-2024-07-18")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each approach; the fastest of each is compared"
    )
    parser.add_argument(
        "--serial", action="store_true", help="validate_file without its token-counting worker"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    ours_env = {"FINETUNE_WB_PARALLEL_TOKENS": "0"} if args.serial else {}
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        size = generate(path, args.examples)
        seed_runs: list[dict[str, float]] = []
        our_runs: list[dict[str, float]] = []
        for _ in range(args.repeat):  # interleaved, so background load hits both alike
            seed_runs.append(run_child(SEED_SCRIPT, path, args.model))
            our_runs.append(run_child(OURS_SCRIPT, path, args.model, ours_env))
        baseline = run_child(BASELINE_SCRIPT, path, args.model)
    seed = min(seed_runs, key=lambda r: r["wall_seconds"])
    ours = min(our_runs, key=lambda r: r["wall_seconds"])
    if seed["tokens"] != ours["tokens"]:
        print(f"WARNING: token totals differ: seed {seed['tokens']} vs validate_file {ours['tokens']}")
    figures = {
        "examples": args.examples,
        "file_mb": size / 1e6,
        "seed": seed,
        "validate_file": ours,
        "repeat": args.repeat,
        "seed_wall_seconds_all": [r["wall_seconds"] for r in seed_runs],
        "validate_file_wall_seconds_all": [r["wall_seconds"] for r in our_runs],
        "speedup": seed["wall_seconds"] / ours["wall_seconds"],
        "memory_ratio": ours["peak_pss_mib"] / seed["peak_pss_mib"],
        "baseline_peak_rss_mib": baseline["peak_rss_mib"],
        "baseline_peak_pss_mib": baseline["peak_pss_mib"],
        "token_worker": not args.serial,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}",
        "load_average_before": LOAD_BEFORE,
        "load_average_after": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"$ {figures['command']}")
    print(
        f"machine: {figures['machine']}, load average {LOAD_BEFORE:.2f} before, "
        f"{figures['load_average_after']:.2f} after"
    )
    print(
        f"synthetic file: {args.examples:,} examples, {size / 1e6:.1f} MB, model {args.model};"
        f" fastest of {args.repeat} interleaved runs each;"
        f" token worker {'off' if args.serial else 'on (when the file is large enough)'}"
    )
    for name, r in (("seed approach", seed), ("validate_file", ours)):
        print(
            f"  {name:14s} wall {r['wall_seconds']:6.2f} s (work {r['inner_seconds']:6.2f} s,"
            f" CPU {r['cpu_seconds']:5.2f} s)   peak PSS {r['peak_pss_mib']:6.1f} MiB"
            f" (max RSS {r['peak_rss_mib']:6.1f} MiB, {int(r['processes'])} process(es))"
            f"   tokens {int(r['tokens']):,}"
        )
    print(
        f"  {'':14s} token worker: {int(ours.get('lines_from_worker', 0)):,} of {args.examples:,} lines counted"
        f" there; the validator waited {ours.get('wait_seconds', 0.0):.2f} s for it"
    )
    print(
        f"  {'floor':14s} peak PSS {baseline['peak_pss_mib']:6.1f} MiB (python + tiktoken + the"
        f" {encoding_name_for_model(args.model)} encoding, as the seed loads it)"
    )
    print(
        f"  validate_file is {figures['speedup']:.2f}x faster and uses {figures['memory_ratio']:.2f}x"
        f" the peak memory (target: >= 4x faster, <= 0.25x memory)"
    )
    return 0


LOAD_BEFORE = os.getloadavg()[0]


if __name__ == "__main__":
    raise SystemExit(main())
