"""Benchmark: the data-quality pass (``check_quality``) next to the validator's own time and memory.

Uses the synthetic chat file of ``bench_validate.py`` (200,000 examples, ~124 MB, same generator and seed)
and runs, each in a fresh Python process so that peak memory is measured on its own:

* ``validate_file(path)`` — the validator alone (the reference time);
* ``check_quality(path)`` — the quality pass alone (duplicates, near duplicates, conflicts, labels,
  outliers, secrets and personal data); one cold run first, in a fresh ``FINETUNE_WB_HOME``, shows the
  cost of computing datasketch's MinHash parameters once (importing datasketch and scipy);
* ``validate_file(path, quality=True)`` — both, as ``finetune-wb validate --quality`` runs them.

``--dirty`` appends 1 % exact copies, 1 % near copies (one word changed) and 1 % lines with an e-mail
address, so the findings are built too. Wall time is measured around each child (start-up and imports
included), peak memory is the child's maximum resident set size; each is run ``--repeat`` times,
interleaved, and the fastest run is kept (other work on a shared machine only ever adds time). Usage::

    python benchmarks/bench_quality.py [--examples 200000] [--dirty] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_validate import generate, run_child

VALIDATE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from finetune_wb.validation.validate import validate_file
report = validate_file(sys.argv[1], model=sys.argv[2])
print(json.dumps({"n": report.n_examples, "inner_seconds": time.perf_counter() - t0, "findings": 0}))
"""

QUALITY_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from finetune_wb.validation.quality import check_quality
report = check_quality(sys.argv[1])
print(json.dumps({"n": report.n_examples, "inner_seconds": time.perf_counter() - t0,
                  "datasketch_imported": "datasketch" in sys.modules,
                  "findings": sum(report.counts.values()), "counts": report.counts}))
"""

BOTH_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from finetune_wb.validation.validate import validate_file
report = validate_file(sys.argv[1], model=sys.argv[2], quality=True)
print(json.dumps({"n": report.n_examples, "inner_seconds": time.perf_counter() - t0,
                  "findings": sum(report.quality.counts.values())}))
"""


def dirty(path: Path, seed: int = 1) -> int:
    """Append 1 % exact copies, 1 % near copies (one word changed) and 1 % lines with an e-mail address;
    return the count. Streams the file (only the chosen lines are kept), so that this process stays small:
    the children it starts are measured, and a fork copies the parent's resident memory."""
    rng = random.Random(seed)
    with open(path, encoding="utf-8") as f:
        total = sum(1 for _ in f)
    n = total // 100
    picks = [rng.randrange(total) for _ in range(3 * n)]
    chosen = set(picks)
    wanted: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i in chosen:
                wanted[i] = line.rstrip("\n")
    extra = [wanted[i] for i in picks[:n]]
    for i in picks[n : 2 * n]:
        obj = json.loads(wanted[i])
        words = obj["messages"][1]["content"].split()
        words[rng.randrange(len(words))] = "changed"
        obj["messages"][1]["content"] = " ".join(words)
        extra.append(json.dumps(obj))
    for k, i in enumerate(picks[2 * n :]):
        obj = json.loads(wanted[i])
        obj["messages"][1]["content"] += f" Reply to customer{k}@mail-{k % 7}.net please."
        extra.append(json.dumps(obj))
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    return len(extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--model", default="gpt-4o-mini-2024-07-18")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest of each is kept")
    parser.add_argument("--dirty", action="store_true", help="add 3 %% lines that are findings")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        generate(path, args.examples)
        added = dirty(path) if args.dirty else 0
        size = path.stat().st_size
        # A fresh home: the first quality run computes datasketch's MinHash parameters (importing datasketch
        # and scipy) and caches them; the timed runs after it read them back, as every later run does.
        os.environ["FINETUNE_WB_HOME"] = str(Path(tmp) / "home")
        cold = run_child(QUALITY_SCRIPT, path, args.model)
        runs: dict[str, list[dict[str, float]]] = {"validate": [], "quality": [], "both": []}
        for _ in range(args.repeat):  # interleaved, so background load hits all alike
            runs["validate"].append(run_child(VALIDATE_SCRIPT, path, args.model))
            runs["quality"].append(run_child(QUALITY_SCRIPT, path, args.model))
            runs["both"].append(run_child(BOTH_SCRIPT, path, args.model))
    best = {name: min(rs, key=lambda r: r["wall_seconds"]) for name, rs in runs.items()}
    v, q, b = best["validate"], best["quality"], best["both"]
    figures = {
        "examples": args.examples + added,
        "file_mb": size / 1e6,
        "repeat": args.repeat,
        "dirty": args.dirty,
        **best,
        "wall_seconds_all": {name: [r["wall_seconds"] for r in rs] for name, rs in runs.items()},
        "quality_first_run": cold,
        "quality_vs_validate_time": q["inner_seconds"] / v["inner_seconds"],
        "both_vs_validate_time": b["inner_seconds"] / v["inner_seconds"],
        "both_vs_validate_memory": b["peak_rss_mib"] / v["peak_rss_mib"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"synthetic file: {figures['examples']:,} examples{' (dirty)' if args.dirty else ''},"
        f" {size / 1e6:.1f} MB; fastest of {args.repeat} interleaved runs each"
    )
    for label, r in (("validate_file", v), ("check_quality", q), ("validate --quality", b)):
        print(
            f"  {label:18s} wall {r['wall_seconds']:6.2f} s (work {r['inner_seconds']:6.2f} s)"
            f"   peak RSS {r['peak_rss_mib']:7.1f} MiB   findings {int(r['findings']):,}"
        )
    print(
        f"  first quality run ever (computes and caches datasketch's parameters): wall"
        f" {cold['wall_seconds']:6.2f} s, peak RSS {cold['peak_rss_mib']:7.1f} MiB"
    )
    print(
        f"  the quality pass takes {figures['quality_vs_validate_time']:.2f}x the validator's time;"
        f" validate --quality: {figures['both_vs_validate_time']:.2f}x the time,"
        f" {figures['both_vs_validate_memory']:.2f}x the peak memory (goal: the pass adds <= 1x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
