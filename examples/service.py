"""finetune_wb inside a small service: an HTTP front end, a job queue, worker threads. Standard library only.

Each request becomes one fine-tuning job with its own FineTuneSession and state file under --work-dir, so:

* the service never prints: everything goes through ``logging``;
* workers run sessions in parallel, one session per job, nothing shared between them;
* if the service dies, restarting it re-queues unfinished jobs and each session resumes where it stopped
  (no second upload, no second paid job, cached evaluation answers).

    python examples/service.py --emulator --port 8321 --work-dir /tmp/ft-service
    curl -X POST localhost:8321/jobs -d '{"demo": true, "n_train": 30, "baselines": ["gpt-4o-mini-2024-07-18"]}'
    curl localhost:8321/jobs/<id>

    python examples/service.py --emulator --self-test     # what CI runs: submit one job over HTTP, wait, exit
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from finetune_wb import FineTuneSession, JobSpec, Template

log = logging.getLogger("finetune_service")

DEFAULT_TEMPLATE = {"system": "Answer Yes or No.", "user": "Clause: {text}", "assistant": "{answer}"}


class FineTuneService:
    """A queue of fine-tuning requests worked off by ``workers`` threads; state lives in ``work_dir``."""

    def __init__(
        self,
        work_dir: Path,
        *,
        client_factory: Callable[[], Any] = lambda: None,
        workers: int = 2,
        wandb_mode: str | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.client_factory = client_factory
        self.wandb_mode = wandb_mode
        self.jobs: queue.Queue[str | None] = queue.Queue()
        self.threads = [
            threading.Thread(target=self._work, name=f"finetune-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    # -- API used by the HTTP handler ----------------------------------------------------------------------
    def submit(self, request: dict[str, Any]) -> str:
        if not request.get("demo") and not request.get("records"):
            raise ValueError('a request needs "records": [...] or "demo": true')
        key = uuid.uuid4().hex[:12]
        job_dir = self.work_dir / key
        job_dir.mkdir()
        (job_dir / "request.json").write_text(json.dumps(request), encoding="utf-8")
        self.jobs.put(key)
        log.info("queued request %s", key)
        return key

    def status(self, key: str) -> dict[str, Any] | None:
        job_dir = self.work_dir / key
        if not (job_dir / "request.json").is_file():
            return None
        out: dict[str, Any] = {"id": key, "state": "queued"}
        state_file = job_dir / "state.json"
        if state_file.is_file():
            state = json.loads(state_file.read_text(encoding="utf-8"))
            out.update(state="running", job_id=state.get("job_id"), job_status=state.get("job_status"))
            out["fine_tuned_model"] = state.get("fine_tuned_model")
        for name, final in (("result.json", "done"), ("error.json", "failed")):
            if (job_dir / name).is_file():
                out["state"] = final
                out[final if final == "failed" else "result"] = json.loads(
                    (job_dir / name).read_text("utf-8")
                )
        return out

    def list(self) -> list[dict[str, Any]]:
        return [s for p in sorted(self.work_dir.iterdir()) if p.is_dir() and (s := self.status(p.name))]

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        # Requests that were queued or running when the service last stopped: resume them.
        for job_dir in sorted(self.work_dir.iterdir()):
            done = (job_dir / "result.json").exists() or (job_dir / "error.json").exists()
            if (job_dir / "request.json").is_file() and not done:
                log.info("re-queueing unfinished request %s", job_dir.name)
                self.jobs.put(job_dir.name)
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join(timeout=60)

    def _work(self) -> None:
        while (key := self.jobs.get()) is not None:
            try:
                result = self._run(key)
                (self.work_dir / key / "result.json").write_text(json.dumps(result), encoding="utf-8")
                log.info("request %s done: %s", key, result["fine_tuned_model"])
            except Exception as exc:  # a worker survives any one job
                log.exception("request %s failed", key)
                error = {"type": type(exc).__name__, "message": str(exc)}
                (self.work_dir / key / "error.json").write_text(json.dumps(error), encoding="utf-8")

    def _run(self, key: str) -> dict[str, Any]:
        job_dir = self.work_dir / key
        request = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
        session = FineTuneSession(
            request.get("project", "finetune-service"),
            client=self.client_factory(),
            state_path=job_dir / "state.json",  # an existing file means: resume
            wandb_mode=self.wandb_mode,  # type: ignore[arg-type]
            wandb_dir=job_dir,
        )
        if request.get("demo"):
            from finetune_wb.data.demo_dataset import load_demo_records

            records = load_demo_records()
        else:
            records = request["records"]
        session.prepare(
            records,
            template=Template(**request.get("template", DEFAULT_TEMPLATE)),
            n_train=request.get("n_train"),
            seed=request.get("seed", 42),
        )
        spec = JobSpec(**request.get("job", {"model": "gpt-4o-mini-2024-07-18", "n_epochs": 3}))
        session.validate(model=spec.model)
        session.fine_tune(spec)
        job = session.wait()
        report = session.evaluate(
            baselines=request.get("baselines", []), evaluators=request.get("evaluators")
        )
        return {
            "job_id": job.id,
            "fine_tuned_model": job.fine_tuned_model,
            "metrics": {m: {e: v.value for e, v in per.items()} for m, per in report.metrics.items()},
            "comparisons": [c.model_dump(mode="json") for c in report.comparisons],
        }


def make_handler(service: FineTuneService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: HTTPStatus, body: Any) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/jobs":
                return self._send(HTTPStatus.NOT_FOUND, {"error": "POST /jobs"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                key = service.submit(json.loads(self.rfile.read(length) or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            self._send(HTTPStatus.ACCEPTED, {"id": key})

        def do_GET(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            if parts == ["jobs"]:
                return self._send(HTTPStatus.OK, service.list())
            if len(parts) == 2 and parts[0] == "jobs" and (status := service.status(parts[1])) is not None:
                return self._send(HTTPStatus.OK, status)
            self._send(HTTPStatus.NOT_FOUND, {"error": "unknown job"})

        def log_message(self, format: str, *args: Any) -> None:  # route access logs to logging
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def self_test(base: str, timeout: float = 180.0) -> int:
    """Submit the bundled demo dataset over HTTP and poll until it is done; 0 when the fine-tune wins."""
    body = json.dumps({"demo": True, "n_train": 30, "baselines": ["gpt-4o-mini-2024-07-18"]}).encode()
    req = urllib.request.Request(f"{base}/jobs", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        key = json.load(resp)["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/jobs/{key}", timeout=10) as resp:
            status = json.load(resp)
        if status["state"] in ("done", "failed"):
            log.info("self-test result: %s", json.dumps(status))
            if status["state"] != "done":
                return 1
            metrics = status["result"]["metrics"]
            ft = status["result"]["fine_tuned_model"]
            wins = metrics[ft]["exact_match"] > metrics["gpt-4o-mini-2024-07-18"]["exact_match"]
            return 0 if wins else 1
        time.sleep(0.5)
    log.error("self-test timed out")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8321)
    parser.add_argument("--work-dir", default=None, help="where requests and session states live")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--emulator", action="store_true", help="serve jobs from the embedded emulator")
    parser.add_argument("--self-test", action="store_true", help="submit one demo job over HTTP, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    with ExitStack() as stack:
        work_dir = Path(
            args.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="ft-service-"))
        )
        client_factory: Callable[[], Any] = lambda: None  # noqa: E731 - None: from the environment
        wandb_mode = None
        if args.emulator:
            from finetune_wb.emulator import run_emulator

            emu = stack.enter_context(run_emulator(pace=0.2))
            client_factory, wandb_mode = emu.client, "offline"
        service = FineTuneService(
            work_dir, client_factory=client_factory, workers=args.workers, wandb_mode=wandb_mode
        )
        service.start()
        stack.callback(service.stop)
        server = ThreadingHTTPServer(("127.0.0.1", 0 if args.self_test else args.port), make_handler(service))
        stack.callback(server.server_close)
        host, port = server.server_address[:2]
        log.info("listening on http://%s:%s (work dir %s)", host, port, work_dir)
        if args.self_test:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            stack.callback(server.shutdown)
            return self_test(f"http://{host}:{port}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
