"""The Batch API: ``/v1/batches`` (create, list, retrieve, cancel), its lifecycle and its fault controls.

A batch moves on the emulator's clock (durations scaled by the pace): ``validating`` (the input file is
checked line by line as the real API checks it: JSON, a unique ``custom_id``, ``POST``, the batch's
endpoint, one model per file, at most 50,000 requests and 200 MB) -> ``in_progress`` (``request_counts``
grow with time) -> ``finalizing`` (every line is answered by the same code as ``/v1/chat/completions``;
results stream to an output and an error file of purpose ``batch_output``) -> ``completed``. A failed
validation ends in ``failed`` with ``errors.data[{code, message, param, line}]``; a cancel passes through
``cancelling`` to ``cancelled``. Batches are persisted with the rest of the state.

Fault controls (``POST /_emulator/batch_faults`` or :meth:`Emulator.batch_fault`) apply to the next
``count`` batches created: fail validation, expire after answering a fraction of the lines (the answered
part is kept in the output file, the rest is ``batch_expired`` in the error file), or make some lines
error (HTTP 500 in the error file).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator.bodies import admin_json, api_json
from finetune_wb.emulator.chat import chat_completion
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.state import ApiError, new_id, paginate, parse_limit

ENDPOINTS = ("/v1/chat/completions", "/chat/completions")  # the second: Azure OpenAI's spelling
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
EXPIRY_S = 24 * 3600
VALIDATING_S = 2.0
IN_PROGRESS_S = 5.0
FINALIZING_S = 1.0
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchFaults:
    """What the next ``count`` batches created suffer (None: every later batch, until reset)."""

    fail_validation: str | None = None
    expire_after_fraction: float | None = None
    error_every: int | None = None
    count: int | None = 1


@dataclass
class BatchControls:
    """Per-emulator fault rules and the number of batch lines answered (what would be billed)."""

    pending: list[BatchFaults] = field(default_factory=list)
    answered: int = 0

    def take(self) -> dict[str, Any]:
        if not self.pending:
            return {}
        rule = self.pending[0]
        if rule.count is not None:
            rule.count -= 1
            if rule.count <= 0:
                self.pending.pop(0)
        return {k: v for k, v in rule.__dict__.items() if k != "count" and v is not None}


def controls(core: Core) -> BatchControls:
    found = core.__dict__.get("_batch_controls")
    if found is None:
        found = core.__dict__["_batch_controls"] = BatchControls()
    return found  # type: ignore[no-any-return]


def _get(core: Core, batch_id: str) -> dict[str, Any]:
    batch = core.store.batches.get(batch_id)
    if batch is None:
        raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")
    return batch


def create_batch(core: Core, body: dict[str, Any]) -> dict[str, Any]:
    store = core.store
    for key in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(body.get(key), str):
            raise ApiError(
                400, f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter"
            )
    if body["endpoint"] not in ENDPOINTS:
        raise ApiError(
            400,
            f"Invalid 'endpoint': {body['endpoint']!r}; the emulator batches {', '.join(ENDPOINTS)}.",
            param="endpoint",
        )
    if body["completion_window"] != "24h":
        raise ApiError(
            400, "Invalid 'completion_window': only '24h' is supported.", param="completion_window"
        )
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise ApiError(400, "Invalid 'metadata': at most 16 string key-value pairs.", param="metadata")
    now = core.now()
    with store.lock:
        file = store.get_file(body["input_file_id"], param="input_file_id")
        if file["purpose"] != "batch":
            raise ApiError(
                400,
                f"The file {file['id']} has purpose {file['purpose']!r}; a batch input file needs purpose 'batch'.",
                param="input_file_id",
            )
        batch_id = new_id("batch_")
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file["id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(now),
            "in_progress_at": None,
            "expires_at": int(now + EXPIRY_S),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        store.batches[batch_id] = batch
        store.runtime[batch_id] = {"pace": core.pace, "created": now, "faults": controls(core).take()}
        store.save()
        return batch


def _validate(core: Core, batch: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The errors of the input file (``[]`` when valid) and its number of requests."""
    store = core.store
    path = store.blob_path(batch["input_file_id"])
    errors: list[dict[str, Any]] = []

    def err(code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(errors) < 100:
            errors.append({"code": code, "message": message, "param": param, "line": line})

    size = path.stat().st_size if path.exists() else 0
    if size > MAX_BYTES:
        err(
            "file_too_large",
            f"The input file is {size} bytes; a batch input file is at most {MAX_BYTES}.",
            None,
        )
    seen: set[str] = set()
    models: set[str] = set()
    n = 0
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            n += 1
            try:
                item = json.loads(raw)
            except ValueError:
                err("invalid_json_line", f"Line {number} is not valid JSON.", number)
                continue
            if not isinstance(item, dict):
                err("invalid_json_line", f"Line {number} is not a JSON object.", number)
                continue
            cid = item.get("custom_id")
            if not isinstance(cid, str) or not cid:
                err("missing_required_parameter", "Missing 'custom_id'.", number, "custom_id")
            elif cid in seen:
                err(
                    "duplicate_custom_id",
                    f"The custom_id {cid!r} is used more than once.",
                    number,
                    "custom_id",
                )
            else:
                seen.add(cid)
            if item.get("method") != "POST":
                err("invalid_method", "'method' must be 'POST'.", number, "method")
            if item.get("url") != batch["endpoint"]:
                err(
                    "mismatched_endpoint",
                    f"The url {item.get('url')!r} does not match the batch's endpoint {batch['endpoint']!r}.",
                    number,
                    "url",
                )
            body = item.get("body")
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                err("missing_required_parameter", "Missing 'body.model'.", number, "body.model")
            else:
                models.add(body["model"])
                if len(models) > 1:
                    err(
                        "mismatched_model",
                        f"Line {number} uses model {body['model']!r}; all requests of a batch file must use "
                        "the same model.",
                        number,
                        "body.model",
                    )
    if n > MAX_REQUESTS:
        err("too_many_requests", f"The file has {n} requests; a batch holds at most {MAX_REQUESTS}.", None)
    if n == 0:
        err("empty_file", "The input file has no requests.", None)
    return errors, n


def _answer_lines(core: Core, batch: dict[str, Any], rt: dict[str, Any], *, cancelled: bool) -> None:
    """Answer the lines (all, or the fraction before an injected expiry) into the output and error files."""
    store = core.store
    faults = rt.get("faults") or {}
    total = batch["request_counts"]["total"]
    answer_up_to = 0 if cancelled else total
    fraction = faults.get("expire_after_fraction")
    if fraction is not None:
        answer_up_to = int(total * float(fraction))
    every = faults.get("error_every")
    out_tmp, err_tmp = store.incoming_path(), store.incoming_path()
    done = failed = index = 0
    unfinished = "batch_cancelled" if cancelled else "batch_expired"
    with (
        store.blob_path(batch["input_file_id"]).open("rb") as lines,
        out_tmp.open("w", encoding="utf-8") as out,
        err_tmp.open("w", encoding="utf-8") as errs,
    ):
        for raw in lines:
            if not raw.strip():
                continue
            item = json.loads(raw)
            line: dict[str, Any] = {
                "id": "batch_req_" + secrets.token_hex(12),
                "custom_id": item["custom_id"],
            }
            if index >= answer_up_to:
                message = "This request could not be executed before the batch " + (
                    "was cancelled." if cancelled else "expired."
                )
                line.update(response=None, error={"code": unfinished, "message": message})
                errs.write(json.dumps(line) + "\n")
            elif every and (index + 1) % every == 0:
                failed += 1
                error = ApiError(500, "The server had an error processing this request (injected).")
                response = {
                    "status_code": 500,
                    "request_id": "req_" + secrets.token_hex(12),
                    "body": error.body(),
                }
                line.update(response=response, error=None)
                errs.write(json.dumps(line) + "\n")
            else:
                request_id = "req_" + secrets.token_hex(12)
                try:
                    body: Any = chat_completion(core, json.dumps(item["body"]).encode())
                    status = 200
                except ApiError as exc:
                    body, status = exc.body(), exc.status
                line.update(
                    response={"status_code": status, "request_id": request_id, "body": body}, error=None
                )
                if status == 200:
                    done += 1
                    out.write(json.dumps(line) + "\n")
                else:
                    failed += 1
                    errs.write(json.dumps(line) + "\n")
            index += 1
    controls(core).answered += done + failed
    batch["request_counts"] = {"total": total, "completed": done, "failed": failed}
    now = core.now()
    for tmp, key, name in ((out_tmp, "output_file_id", "output"), (err_tmp, "error_file_id", "error")):
        if tmp.stat().st_size:
            file = store.add_file(
                source=tmp, filename=f"{batch['id']}_{name}.jsonl", purpose="batch_output", now=now
            )
            batch[key] = file["id"]
        else:
            tmp.unlink()
    rt["expired"] = fraction is not None and not cancelled


def tick(core: Core, batch: dict[str, Any]) -> None:
    """Bring ``batch`` to where the clock says it is (call under the store lock)."""
    if batch["status"] in TERMINAL:
        return
    store = core.store
    rt = store.runtime[batch["id"]]
    pace = float(rt.get("pace", 1.0))
    created = float(rt["created"])
    now = core.now()
    valid_at = created + VALIDATING_S * pace
    final_at = valid_at + IN_PROGRESS_S * pace
    done_at = final_at + FINALIZING_S * pace
    changed = False
    if batch["status"] == "cancelling":
        _answer_lines(core, batch, rt, cancelled=True)
        batch.update(status="cancelled", cancelled_at=int(now))
        store.save()
        return
    if batch["status"] == "validating" and now >= valid_at:
        errors, n = _validate(core, batch)
        fault = (rt.get("faults") or {}).get("fail_validation")
        if fault:
            errors = errors or [{"code": "invalid_request", "message": str(fault), "param": None, "line": 1}]
        if errors:
            batch.update(status="failed", failed_at=int(valid_at), errors={"object": "list", "data": errors})
            store.save()
            return
        batch.update(status="in_progress", in_progress_at=int(valid_at))
        batch["request_counts"]["total"] = n
        changed = True
    if batch["status"] == "in_progress":
        total = batch["request_counts"]["total"]
        if now < final_at:
            share = (now - valid_at) / max(final_at - valid_at, 1e-9)
            batch["request_counts"]["completed"] = min(total, int(total * share))
        else:
            batch["request_counts"]["completed"] = 0
            _answer_lines(core, batch, rt, cancelled=False)
            if rt.get("expired"):
                batch.update(status="expired", expired_at=int(final_at))
                store.save()
                return
            batch.update(status="finalizing", finalizing_at=int(final_at))
        changed = True
    if batch["status"] == "finalizing" and now >= done_at:
        batch.update(status="completed", completed_at=int(done_at))
        changed = True
    if changed:
        store.save()


def batch_routes(core: Core) -> list[Route]:
    store = core.store

    async def create(request: Request) -> Response:
        body = await api_json(request)
        return JSONResponse(await run_in_threadpool(create_batch, core, body))

    def ticked(batch_id: str) -> dict[str, Any]:
        with store.lock:
            batch = _get(core, batch_id)
            tick(core, batch)
            return dict(batch)

    async def retrieve(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(ticked, request.path_params["batch_id"]))

    def listing(after: str | None, limit: int) -> dict[str, Any]:
        with store.lock:
            items = list(reversed(store.batches.values()))
            for batch in items:
                tick(core, batch)
            return paginate([dict(b) for b in items], after=after, limit=limit, what="batch")

    async def list_batches(request: Request) -> Response:
        q = request.query_params
        limit = parse_limit(q.get("limit"), default=20, maximum=100)
        return JSONResponse(await run_in_threadpool(listing, q.get("after"), limit))

    def do_cancel(batch_id: str) -> dict[str, Any]:
        with store.lock:
            batch = _get(core, batch_id)
            tick(core, batch)
            if batch["status"] in TERMINAL or batch["status"] == "cancelling":
                raise ApiError(
                    400,
                    f"Cannot cancel batch {batch_id}: its status is {batch['status']!r}.",
                    param="batch_id",
                )
            batch.update(status="cancelling", cancelling_at=int(core.now()))
            store.save()
            return dict(batch)

    async def cancel(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(do_cancel, request.path_params["batch_id"]))

    async def add_fault(request: Request) -> Response:
        body = await admin_json(request)
        try:
            rule = BatchFaults(**body)
        except TypeError as exc:
            raise ApiError(400, f"Invalid batch fault: {exc}") from None
        check_fault(rule)
        controls(core).pending.append(rule)
        return JSONResponse({"pending": [r.__dict__ for r in controls(core).pending]})

    return [
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
        Route("/_emulator/batch_faults", add_fault, methods=["POST"]),
    ]


def check_fault(rule: BatchFaults) -> None:
    """Refuse a fault rule that could not apply (400 over HTTP, EmulatorError from Python)."""
    fraction = rule.expire_after_fraction
    if fraction is not None and (isinstance(fraction, bool) or not 0 <= float(fraction) < 1):
        raise ApiError(400, f"'expire_after_fraction' must be in [0, 1), got {fraction!r}.")
    if rule.error_every is not None and (not isinstance(rule.error_every, int) or rule.error_every < 1):
        raise ApiError(400, f"'error_every' must be an integer >= 1, got {rule.error_every!r}.")
    if rule.count is not None and (not isinstance(rule.count, int) or rule.count < 1):
        raise ApiError(400, f"'count' must be an integer >= 1 or null, got {rule.count!r}.")
