"""Benchmark of the evaluation engine against the local emulator with a 100 ms chat latency.

The emulator runs in its own process (``finetune-wb emulator``, driven through its admin routes), as a real
server would: its CPU time is not charged to the client being measured. In one run:

1. **per row, whole process**: the seed's serial loop (one ``client.chat.completions.create`` after
   another, on ``--serial-rows``) against a whole ``finetune-wb eval`` process on ``--n`` rows with
   ``--concurrency`` (64) in flight: seconds per row each, and the ratio (goal >= 50x);
2. **256 in flight**: the same ``finetune-wb eval`` process at ``--concurrency 256``: requests per second
   and client CPU per request (the child's user + system time, imports included);
3. **transports**: ``evaluate`` in this process on ``--transport-rows`` rows at 64 and 256 in flight with
   each HTTP path (the engine's direct POST or the typed ``AsyncOpenAI`` call, each over openai's aiohttp
   or default httpx transport): requests per second and client CPU per request (``time.process_time``);
4. **start-up**: a one-row ``finetune-wb eval`` process: when its first request reaches the server and
   when it exits (best of 3; goals <= 0.6 s and <= 1.2 s);
5. **peer**: inspect_ai (``inspect_ai.eval``, model ``openai-api/emu/<model>`` with ``EMU_BASE_URL``) in a
   whole process on the same rows, server and concurrency: seconds per row and the ratio (goal >= 5x);
6. **checks**: on 300 rows, a server-side RPM limit with the same ``rpm`` given to ``evaluate`` (share of
   the limit achieved, 429s, rows lost) and a re-run of a finished evaluation (requests it makes).

    python benchmarks/bench_eval.py [--n 2000] [--serial-rows 100] [--concurrency 64] [--json]
    python benchmarks/bench_eval.py --quick      # ~1 minute: 300 rows, 30 serial, no RPM check

``--no-peer`` skips inspect_ai (an optional benchmark dependency: ``pip install inspect-ai``), ``--no-rpm``
the 75-s RPM check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def clause_rows(n: int) -> list[dict[str, Any]]:
    """``n`` distinct chat examples (dicts): generated NDA clauses, numbered past the first 300."""
    from finetune_wb.data.demo_dataset import DEMO_SYSTEM_PROMPT, DEMO_USER_TEMPLATE, generate_clauses

    base = generate_clauses(max(2, min(n, 300)), seed=7)
    rows = []
    for i in range(n):
        r = base[i % len(base)]
        text = r["text"] if i < len(base) else f"{r['text']} (Section {i // len(base) + 1}.{i % len(base)})"
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": DEMO_SYSTEM_PROMPT},
                    {"role": "user", "content": DEMO_USER_TEMPLATE.format(text=text)},
                    {"role": "assistant", "content": r["answer"]},
                ]
            }
        )
    return rows


def build_examples(n: int) -> list[Any]:
    from finetune_wb.schema import ChatExample

    return [ChatExample.model_validate(row) for row in clause_rows(n)]


class RemoteEmulator:
    """``finetune-wb emulator`` in a subprocess, with the in-process emulator's controls over HTTP."""

    def __init__(self, pace: float | None = None) -> None:
        pace_args = [] if pace is None else ["--pace", str(pace)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finetune_wb", "emulator", "--port", "0", *pace_args],
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


def write_rows(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in clause_rows(n):
            f.write(json.dumps(row) + "\n")
    return path


def _child_env(emu: Any) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": emu.base_url, "OPENAI_API_KEY": "sk-test"}


def run_process(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command; its wall seconds, CPU seconds (user + system, children included) and exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "rc": proc.returncode, "stdout": out.decode(), "stderr": err.decode(), "ru": ru}


def eval_process(emu: Any, data: Path, n: int, concurrency: int) -> dict[str, Any]:
    """A whole ``finetune-wb eval`` process on ``data``: wall, client CPU, requests it sent."""
    before_ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = len(chat_requests(emu))
    argv = [sys.executable, "-m", "finetune_wb", "eval", "--data", str(data), "--model", MODEL]
    argv += ["--no-cache", "--no-progress", "--json", "--concurrency", str(concurrency)]
    r = run_process(argv, _child_env(emu))
    if r["rc"] != 0:
        raise SystemExit(f"finetune-wb eval failed ({r['rc']}):\n{r['stderr'][-2000:]}")
    cpu = (r["ru"].ru_utime - before_ru.ru_utime) + (r["ru"].ru_stime - before_ru.ru_stime)
    requests = len(chat_requests(emu)) - before
    return {
        "rows": n,
        "concurrency": concurrency,
        "seconds": r["wall"],
        "seconds_per_row": r["wall"] / n,
        "requests": requests,
        "requests_per_second": requests / r["wall"],
        "client_cpu_seconds": cpu,
        "client_cpu_ms_per_request": cpu / max(requests, 1) * 1000,
    }


def startup(emu: Any, tmp: Path, repeat: int = 3) -> dict[str, Any]:
    """A one-row ``finetune-wb eval``: seconds until its request reaches the server, and until it exits."""
    data = write_rows(tmp / "one.jsonl", 1)
    firsts, wholes = [], []
    for _ in range(repeat):
        before = len(chat_requests(emu))
        t0 = time.time()
        argv = [sys.executable, "-m", "finetune_wb", "eval", "--data", str(data), "--model", MODEL]
        r = run_process([*argv, "--no-cache", "--no-progress", "--json"], _child_env(emu))
        if r["rc"] != 0:
            raise SystemExit(f"finetune-wb eval failed ({r['rc']}):\n{r['stderr'][-2000:]}")
        wholes.append(time.time() - t0)
        firsts.append(chat_requests(emu)[before].time - t0)
    return {"first_request_seconds": min(firsts), "whole_seconds": min(wholes), "repeat": repeat}


PEER_SCRIPT = r"""
import json, os, sys
from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import exact
from inspect_ai.solver import generate

data, model, concurrency, log_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
samples = []
for line in open(data, encoding="utf-8"):
    messages = json.loads(line)["messages"]
    prompt = [
        ChatMessageSystem(content=m["content"]) if m["role"] == "system" else ChatMessageUser(content=m["content"])
        for m in messages[:-1]
    ]
    samples.append(Sample(input=prompt, target=messages[-1]["content"]))
task = Task(dataset=samples, solver=generate(), scorer=exact())
log = inspect_eval(
    task, model="openai-api/emu/" + model, max_connections=concurrency, max_samples=concurrency,
    display="none", log_dir=log_dir, max_tokens=256, temperature=0, log_level="error",
)[0]
print(json.dumps({"status": log.status, "samples": len(log.samples or [])}))
"""


def peer(emu: Any, data: Path, n: int, concurrency: int, tmp: Path) -> dict[str, Any] | None:
    """inspect_ai in a whole process on the same rows, server and concurrency (None: not installed)."""
    import importlib.util

    if importlib.util.find_spec("inspect_ai") is None:
        return None
    before_ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = len(chat_requests(emu))
    env = {**os.environ, "EMU_BASE_URL": emu.base_url, "EMU_API_KEY": "sk-test"}
    argv = [sys.executable, "-c", PEER_SCRIPT, str(data), MODEL, str(concurrency), str(tmp / "inspect-logs")]
    r = run_process(argv, env)
    if r["rc"] != 0:
        raise SystemExit(f"inspect_ai failed ({r['rc']}):\n{r['stderr'][-2000:]}")
    out = json.loads(r["stdout"].strip().splitlines()[-1])
    cpu = (r["ru"].ru_utime - before_ru.ru_utime) + (r["ru"].ru_stime - before_ru.ru_stime)
    return {
        "rows": n,
        "samples": out["samples"],
        "status": out["status"],
        "seconds": r["wall"],
        "seconds_per_row": r["wall"] / n,
        "requests": len(chat_requests(emu)) - before,
        "client_cpu_seconds": cpu,
    }


TRANSPORTS = (
    "light+aiohttp",
    "light+httpx",
    "direct+aiohttp",
    "direct+httpx",
    "typed+aiohttp",
    "typed+httpx",
)
"""light: the CLI's own client (evaluation/light_client.py); direct: the engine's POST through an AsyncOpenAI's
HTTP client (evaluation/transport.py); typed: ``AsyncOpenAI.chat.completions.create``."""


def transports(emu: Any, n: int, levels: tuple[int, ...]) -> list[dict[str, Any]]:
    """``evaluate`` in this process with each HTTP path: requests/s and client CPU per request."""
    import openai

    from finetune_wb.evaluation import evaluate, transport
    from finetune_wb.evaluation.light_client import LightAsyncClient

    examples = build_examples(n)
    warm = examples[:8]
    rows = []
    for concurrency in levels:
        for name in TRANSPORTS:
            typed = name.startswith("typed")
            transport._DIRECT["usable"] = transport._RAW_POST["usable"] = not typed
            os.environ["FINETUNE_WB_EVAL_HTTP"] = name.split("+")[1]
            client: Any = openai.OpenAI(base_url=emu.base_url, api_key="sk-test")  # the engine builds its own
            if name.startswith("light"):
                client = LightAsyncClient(api_key="sk-test", base_url=emu.base_url)
            try:
                evaluate(
                    warm, models=MODEL, client=client, cache=None, progress=False, concurrency=concurrency
                )
                before = len(chat_requests(emu))
                cpu, start = time.process_time(), time.perf_counter()
                report = evaluate(
                    examples, models=MODEL, client=client, cache=None, progress=False, concurrency=concurrency
                )
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            finally:
                transport._DIRECT["usable"] = transport._RAW_POST["usable"] = True
                os.environ.pop("FINETUNE_WB_EVAL_HTTP", None)
            requests = len(chat_requests(emu)) - before
            rows.append(
                {
                    "transport": name,
                    "concurrency": concurrency,
                    "requests": requests,
                    "unanswered": report.n_unanswered,
                    "requests_per_second": requests / wall,
                    "client_cpu_ms_per_request": cpu / max(requests, 1) * 1000,
                }
            )
    return rows


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    f: dict[str, Any] = {
        "model": MODEL,
        "latency_s": args.latency,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}",
        "load_average_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp_name, RemoteEmulator() as emu:
        tmp = Path(tmp_name)
        emu.inject_latency(args.latency, path=CHAT)
        data = write_rows(tmp / "rows.jsonl", args.n)
        client = emu.client()
        seed_serial_loop(client, build_examples(2)[:1])  # warm-up: imports, first connection
        serial_examples = build_examples(args.serial_rows)
        start = time.perf_counter()
        seed_serial_loop(client, serial_examples)
        serial = time.perf_counter() - start
        f["serial"] = {
            "rows": args.serial_rows,
            "seconds": serial,
            "seconds_per_row": serial / args.serial_rows,
        }
        f["eval"] = eval_process(emu, data, args.n, args.concurrency)
        f["speedup_per_row"] = f["serial"]["seconds_per_row"] / f["eval"]["seconds_per_row"]
        f["eval_256"] = eval_process(emu, data, args.n, 256)
        f["transports"] = transports(emu, args.transport_rows, (64, 256))
        f["startup"] = startup(emu, tmp)
        if not args.no_peer:
            f["peer"] = peer(emu, data, args.n, args.concurrency, tmp)
            if f["peer"] is not None:
                f["peer_ratio_per_row"] = f["peer"]["seconds_per_row"] / f["eval"]["seconds_per_row"]
    if not args.no_rpm:
        f["checks"] = run(300, args.latency, args.rpm)
    f["load_average_after"] = os.getloadavg()[0]
    return f


def report(f: dict[str, Any]) -> None:
    print(f"$ {f['command']}")
    print(
        f"machine: {f['machine']}, load average {f['load_average_before']:.2f} before,"
        f" {f['load_average_after']:.2f} after; emulator in its own process, {f['latency_s'] * 1000:.0f} ms"
        f" per answer, model {f['model']}"
    )
    s, e, e256 = f["serial"], f["eval"], f["eval_256"]
    print(
        f"  seed serial loop          {s['rows']:5d} rows {s['seconds']:7.2f} s  {s['seconds_per_row'] * 1000:7.2f} ms/row"
    )
    print(
        f"  finetune-wb eval (c={e['concurrency']:3d}) {e['rows']:5d} rows {e['seconds']:7.2f} s "
        f" {e['seconds_per_row'] * 1000:7.2f} ms/row  -> {f['speedup_per_row']:.1f}x per row (goal >= 50x);"
        f" {e['requests_per_second']:.0f} req/s, client CPU {e['client_cpu_ms_per_request']:.2f} ms/request"
    )
    print(
        f"  finetune-wb eval (c=256) {e256['rows']:5d} rows {e256['seconds']:7.2f} s "
        f" {e256['requests_per_second']:.0f} req/s, client CPU {e256['client_cpu_ms_per_request']:.2f} ms/request"
        " (whole process, imports included)"
    )
    print("  evaluate() in process, steady state:")
    for t in f["transports"]:
        print(
            f"    {t['transport']:15s} c={t['concurrency']:3d}  {t['requests_per_second']:6.0f} req/s"
            f"  client CPU {t['client_cpu_ms_per_request']:5.2f} ms/request  ({t['requests']} requests,"
            f" {t['unanswered']} unanswered)"
        )
    st = f["startup"]
    print(
        f"  one-row finetune-wb eval: first request after {st['first_request_seconds']:.2f} s (goal <= 0.6),"
        f" exits after {st['whole_seconds']:.2f} s (goal <= 1.2); best of {st['repeat']}"
    )
    p = f.get("peer")
    if p is not None:
        print(
            f"  inspect_ai (c={e['concurrency']})      {p['rows']:5d} rows {p['seconds']:7.2f} s "
            f" {p['seconds_per_row'] * 1000:7.2f} ms/row  -> finetune-wb eval is {f['peer_ratio_per_row']:.1f}x"
            f" faster per row (goal >= 5x); {p['samples']} samples, {p['requests']} requests"
        )
    elif "peer" in f:
        print("  inspect_ai: not installed (pip install inspect-ai); peer run skipped")
    c = f.get("checks")
    if c is not None:
        print(
            f"  checks on {c['n_examples']} rows: re-run {c['rerun_requests']} requests"
            f" ({c['rerun_cached_rows']} cached); server limit {c['rpm_limit']} rpm:"
            f" {c['rpm_achieved']:.0f} rpm achieved ({c['rpm_share_of_limit']:.0%}), {c['rpm_429s']} x 429,"
            f" {c['rpm_lost_rows']} rows lost; same answers as the serial loop: {c['same_answers_as_serial']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="rows for finetune-wb eval and the peer")
    parser.add_argument("--serial-rows", type=int, default=100, help="rows for the seed's serial loop")
    parser.add_argument("--transport-rows", type=int, default=1000, help="rows per transport run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--rpm",
        type=int,
        default=240,
        help="server and client RPM of the check (default 240: its 300 requests span more than one 60-s"
        " window, so the server limit binds)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the inspect_ai run")
    parser.add_argument("--no-rpm", action="store_true", help="skip the RPM and re-run checks")
    parser.add_argument("--quick", action="store_true", help="300 rows, 30 serial, 300 per transport, no RPM")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.serial_rows, args.transport_rows, args.no_rpm = 300, 30, 300, True
    f = run_all(args)
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        report(f)
    ok = f["speedup_per_row"] >= 20
    checks = f.get("checks")
    if checks is not None:
        ok = ok and checks["rpm_share_of_limit"] >= 0.9 and checks["rpm_lost_rows"] == 0
        ok = ok and checks["rerun_requests"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
