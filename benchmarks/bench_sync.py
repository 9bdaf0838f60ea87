"""Benchmark: ``sync_jobs`` of many finished fine-tuning jobs from the emulator into offline W&B.

The emulator runs in its own process (``finetune-wb emulator --pace P``), so its CPU time is not charged to
the sync. One 100-example training file is uploaded and ``--jobs`` jobs are created on it with
``n_epochs=1, batch_size=1`` (``--steps`` steps of metrics each); once every job has succeeded:

1. the first ``sync_jobs`` (W&B offline, fresh state directory): wall time, jobs per second, client CPU;
2. a second ``sync_jobs`` that finds nothing new: wall time, and its share of the first (goal < 10 %).

W&B runs offline in a temporary directory (nothing leaves the machine). Usage::

    python benchmarks/bench_sync.py [--jobs 200] [--steps 100] [--json]

``--jobs 20`` is a quick run (~20 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import RemoteEmulator

MODEL = "gpt-4o-mini-2024-07-18"


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def training_file(n: int) -> bytes:
    lines = []
    for i in range(n):
        ex = {
            "messages": [
                {"role": "system", "content": "Answer Yes or No."},
                {"role": "user", "content": f"Does clause {i} require written notice?"},
                {"role": "assistant", "content": "Yes" if i % 3 else "No"},
            ]
        }
        lines.append(json.dumps(ex))
    return ("\n".join(lines) + "\n").encode()


def create_jobs(client: Any, n_jobs: int, steps: int) -> list[str]:
    file = client.files.create(file=("train.jsonl", training_file(steps)), purpose="fine-tune")
    ids = []
    for i in range(n_jobs):
        job = client.fine_tuning.jobs.create(
            model=MODEL,
            training_file=file.id,
            suffix=f"bench{i}",
            hyperparameters={"n_epochs": 1, "batch_size": 1},
        )
        ids.append(job.id)
    return ids


def wait_all(client: Any, ids: list[str], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} job(s) did not finish within {timeout:.0f} s")
        for job in client.fine_tuning.jobs.list(limit=100):
            if job.status in ("succeeded", "failed", "cancelled"):
                pending.discard(job.id)
        # the listing shows 100 at a time: ask the stragglers one by one
        for jid in list(pending)[:50]:
            if client.fine_tuning.jobs.retrieve(jid).status in ("succeeded", "failed", "cancelled"):
                pending.discard(jid)
        if pending:
            time.sleep(0.5)


def run(n_jobs: int, steps: int, pace: float) -> dict[str, Any]:
    from finetune_wb.tracking.sync import sync_jobs

    with RemoteEmulator(pace) as emu:
        client = emu.client()
        start = time.perf_counter()
        ids = create_jobs(client, n_jobs, steps)
        wait_all(client, ids)
        setup = time.perf_counter() - start

        figures: dict[str, Any] = {"jobs": n_jobs, "steps_per_job": steps, "setup_seconds": setup}
        for name in ("first", "second"):
            cpu, start = _cpu(), time.perf_counter()
            report = sync_jobs(project="bench-sync", client=client)
            figures[f"{name}_seconds"] = time.perf_counter() - start
            figures[f"{name}_cpu_seconds"] = _cpu() - cpu
            figures[f"{name}_counts"] = report.counts
            if name == "first":
                figures["steps_logged"] = sum(r.n_steps_logged for r in report.results)
        figures["jobs_per_second"] = n_jobs / figures["first_seconds"]
        figures["second_share_of_first"] = figures["second_seconds"] / figures["first_seconds"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100, help="training examples = steps per job")
    parser.add_argument("--pace", type=float, default=0.05, help="the emulator's pace (jobs finish fast)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "FINETUNE_WB_HOME"):
            path = Path(tmp) / var.lower()
            path.mkdir()
            os.environ[var] = str(path)
        os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true")
        os.environ.pop("WANDB_API_KEY", None)
        f = run(args.jobs, args.steps, args.pace)
    f["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    f["machine"] = f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}"
    f["load_average"] = [load_before, os.getloadavg()[0]]
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        print(f"$ {f['command']}")
        print(
            f"machine: {f['machine']}, load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
        print(
            f"{f['jobs']} finished jobs x {f['steps_per_job']} steps (emulator in its own process, W&B offline;"
            f" set-up {f['setup_seconds']:.1f} s)"
        )
        print(
            f"  first sync   {f['first_seconds']:7.2f} s  {f['jobs_per_second']:6.2f} jobs/s"
            f"  client CPU {f['first_cpu_seconds']:6.2f} s  {f['first_counts']}  {f['steps_logged']:,} steps logged"
        )
        print(
            f"  second sync  {f['second_seconds']:7.2f} s  ({f['second_share_of_first']:.1%} of the first;"
            f" goal < 10 %)  client CPU {f['second_cpu_seconds']:6.2f} s  {f['second_counts']}"
        )
    ok = f["second_share_of_first"] < 0.10 and f["first_counts"].get("synced") == args.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
