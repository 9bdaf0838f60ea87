"""The /v1 routes: files, uploads, fine-tuning jobs, models and chat completions."""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator import creation, lifecycle
from finetune_wb.emulator.answerers import Answer, base_model_answer, count_tokens, prompt_tokens
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.state import (
    BASE_MODEL_CREATED,
    BASE_MODELS,
    FILE_PURPOSES,
    ORG_ID,
    ApiError,
    new_id,
    paginate,
    parse_limit,
)

_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")
_TOKEN_END = re.compile(r"\w+|[^\w\s]")


async def json_body(request: Request) -> dict[str, Any]:
    import json

    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _int_option(body: dict[str, Any], key: str, *, default: int | None, low: int, high: int) -> Any:
    """An optional integer request option within [low, high]; null means the default; else a 400."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{key}': {value!r}; use an integer between {low} and {high}.", param=key
        )
    return value


def _reply(answer: Answer, limit: Any) -> tuple[dict[str, Any], str, int]:
    """The assistant message, finish reason and completion tokens for an answer."""
    if isinstance(answer, dict):  # a tool call learned from the training data
        calls: list[dict[str, Any]] = [
            {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {
                    "name": str((c.get("function") or {}).get("name", "")),
                    "arguments": str((c.get("function") or {}).get("arguments", "{}")),
                },
            }
            for c in answer["tool_calls"]
            if isinstance(c, dict)
        ]
        tokens = sum(count_tokens(c["function"]["name"] + " " + c["function"]["arguments"]) for c in calls)
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
        return message, "tool_calls", tokens
    finish = "stop"
    if isinstance(limit, int) and limit > 0 and count_tokens(answer) > limit:
        ends = [m.end() for m in _TOKEN_END.finditer(answer)]
        answer, finish = answer[: ends[limit - 1]], "length"
    return {"role": "assistant", "content": answer, "refusal": None}, finish, count_tokens(answer)


def routes(core: Core) -> list[Route]:
    store = core.store

    # --- files -----------------------------------------------------------------------------------------
    async def create_file(request: Request) -> Response:
        # `async with` closes the uploaded file's spooled temporary file (else a ResourceWarning in the
        # process that hosts the emulator, e.g. a user's pytest run with -W error)
        async with request.form() as form:
            purpose = form.get("purpose")
            upload = form.get("file")
            if not isinstance(purpose, str) or purpose not in FILE_PURPOSES:
                raise ApiError(
                    400,
                    f"Invalid purpose {purpose!r}; use one of {', '.join(FILE_PURPOSES)}.",
                    param="purpose",
                )
            if upload is None or isinstance(upload, str):
                raise ApiError(
                    400,
                    "Missing required parameter: 'file' (multipart file field).",
                    param="file",
                    code="missing_required_parameter",
                )
            data = await upload.read()
            filename = upload.filename or "upload"
        obj = store.add_file(data=data, filename=filename, purpose=purpose, now=core.now())
        return JSONResponse(obj)

    async def list_files(request: Request) -> Response:
        q = request.query_params
        limit = parse_limit(q.get("limit"), default=10_000, maximum=10_000)
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, "Invalid 'order': use 'asc' or 'desc'.", param="order")
        with store.lock:
            items = [f for f in store.files.values() if q.get("purpose") in (None, f["purpose"])]
        if order == "desc":
            items.reverse()
        return JSONResponse(paginate(items, after=q.get("after"), limit=limit, what="file"))

    async def get_file(request: Request) -> Response:
        return JSONResponse(store.get_file(request.path_params["file_id"]))

    async def file_content(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        store.get_file(file_id)
        return Response(store.read_blob(file_id), media_type="application/octet-stream")

    async def delete_file(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        store.delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    # --- uploads ---------------------------------------------------------------------------------------
    def get_upload(upload_id: str, *, pending: bool = False) -> dict[str, Any]:
        obj = store.uploads.get(upload_id)
        if obj is None:
            raise ApiError(404, f"No such Upload object: {upload_id}", param="upload_id", code="not_found")
        if pending and obj["status"] != "pending":
            raise ApiError(
                400,
                f"Upload {upload_id} is {obj['status']}; only a pending upload can take parts, "
                "be completed or be cancelled.",
                param="upload_id",
                code="invalid_upload_state",
            )
        return obj

    async def create_upload(request: Request) -> Response:
        body = await json_body(request)
        size, purpose, filename = body.get("bytes"), body.get("purpose"), body.get("filename")
        if not isinstance(size, int) or size < 0 or size > 8 * 1024**3:
            raise ApiError(400, "Invalid 'bytes': an integer between 0 and 8 GB.", param="bytes")
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"Invalid purpose {purpose!r}.", param="purpose")
        if not isinstance(filename, str) or not filename:
            raise ApiError(400, "Missing required parameter: 'filename'.", param="filename")
        now = core.now()
        obj = {
            "id": new_id("upload_"),
            "object": "upload",
            "bytes": size,
            "created_at": int(now),
            "expires_at": int(now) + 3600,
            "filename": filename,
            "purpose": purpose,
            "status": "pending",
            "file": None,
        }
        with store.lock:
            store.uploads[obj["id"]] = obj
            store.save()
        return JSONResponse(obj)

    async def add_part(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        get_upload(upload_id, pending=True)
        async with request.form() as form:
            data = form.get("data")
            if data is None or isinstance(data, str):
                raise ApiError(
                    400, "Missing required parameter: 'data' (multipart file field).", param="data"
                )
            content = await data.read()
        part = {
            "id": new_id("part_"),
            "object": "upload.part",
            "created_at": int(core.now()),
            "upload_id": upload_id,
        }
        with store.lock:
            store.write_blob(part["id"], content)
            store.parts[part["id"]] = {**part, "bytes": len(content)}
            store.save()
        return JSONResponse(part)

    async def complete_upload(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        body = await json_body(request)
        with store.lock:
            upload = get_upload(upload_id, pending=True)
            part_ids = body.get("part_ids")
            if (
                not isinstance(part_ids, list)
                or not part_ids
                or not all(isinstance(p, str) for p in part_ids)
            ):
                raise ApiError(
                    400,
                    "'part_ids' must be a non-empty list of the part ids returned by "
                    f"POST /v1/uploads/{upload_id}/parts, got {part_ids!r}.",
                    param="part_ids",
                )
            for pid in part_ids:
                if store.parts.get(pid, {}).get("upload_id") != upload_id:
                    raise ApiError(
                        400, f"Part {pid!r} does not belong to upload {upload_id}.", param="part_ids"
                    )
            total = sum(store.parts[p]["bytes"] for p in part_ids)
            if total != upload["bytes"]:
                raise ApiError(
                    400,
                    f"The parts add up to {total} bytes but the upload was created for "
                    f"{upload['bytes']} bytes.",
                    param="bytes",
                    code="upload_size_mismatch",
                )
            data = b"".join(store.read_blob(p) for p in part_ids)
            file = store.add_file(
                data=data, filename=upload["filename"], purpose=upload["purpose"], now=core.now()
            )
            upload.update(status="completed", file=file)
            store.save()
            return JSONResponse(upload)

    async def cancel_upload(request: Request) -> Response:
        with store.lock:
            upload = get_upload(request.path_params["upload_id"], pending=True)
            upload["status"] = "cancelled"
            store.save()
            return JSONResponse(upload)

    # --- fine-tuning jobs ------------------------------------------------------------------------------
    async def create_job(request: Request) -> Response:
        body = await json_body(request)
        return JSONResponse(creation.create_job(store, body, now=core.now(), pace=core.pace))

    async def list_jobs(request: Request) -> Response:
        q = request.query_params
        limit = parse_limit(q.get("limit"), default=20, maximum=100)
        wanted = {m.group(1): v for k, v in q.multi_items() if (m := _METADATA_KEY.match(k))}
        only_without = q.get("metadata") == "null"
        with store.lock:
            items = []
            for job in reversed(store.jobs.values()):
                meta = job.get("metadata") or {}
                if only_without and meta:
                    continue
                if any(meta.get(k) != v for k, v in wanted.items()):
                    continue
                items.append(job)
            return JSONResponse(paginate(items, after=q.get("after"), limit=limit, what="fine-tuning job"))

    async def get_job(request: Request) -> Response:
        return JSONResponse(store.get_job(request.path_params["job_id"]))

    def job_action(action: Any) -> Any:
        async def handler(request: Request) -> Response:
            with store.lock:
                job = store.get_job(request.path_params["job_id"])
                action(store, job, core.now())
                return JSONResponse(job)

        return handler

    def job_listing(kind: str, default_limit: int) -> Any:
        """GET a job's events or checkpoints: newest first, cursor-paginated."""

        async def handler(request: Request) -> Response:
            q = request.query_params
            limit = parse_limit(q.get("limit"), default=default_limit, maximum=100)
            with store.lock:
                job = store.get_job(request.path_params["job_id"])
                held = store.events if kind == "event" else store.checkpoints
                items = list(reversed(held.get(job["id"], [])))
            return JSONResponse(paginate(items, after=q.get("after"), limit=limit, what=kind))

        return handler

    list_events = job_listing("event", 20)
    list_checkpoints = job_listing("checkpoint", 10)

    # --- models ----------------------------------------------------------------------------------------
    def model_object(model_id: str) -> dict[str, Any]:
        if model_id in BASE_MODELS:
            return {"id": model_id, "object": "model", "created": BASE_MODEL_CREATED, "owned_by": "system"}
        job = store.fine_tuned_models().get(model_id)
        if job is None:
            raise ApiError(
                404,
                f"The model `{model_id}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return {
            "id": model_id,
            "object": "model",
            "created": job.get("finished_at") or job["created_at"],
            "owned_by": ORG_ID,
        }

    async def list_models(request: Request) -> Response:
        with store.lock:
            ids = list(BASE_MODELS) + [
                j["fine_tuned_model"]
                for j in store.jobs.values()
                if j.get("fine_tuned_model") and j["fine_tuned_model"] not in store.deleted_models
            ]
            return JSONResponse({"object": "list", "data": [model_object(i) for i in ids]})

    async def get_model(request: Request) -> Response:
        with store.lock:
            return JSONResponse(model_object(request.path_params["model"]))

    async def delete_model(request: Request) -> Response:
        model_id = request.path_params["model"]
        with store.lock:
            model_object(model_id)
            if model_id in BASE_MODELS:
                raise ApiError(
                    403,
                    f"You cannot delete the base model {model_id}; only fine-tuned models "
                    "of your organization can be deleted.",
                    param="model",
                    code="model_not_deletable",
                )
            store.deleted_models.append(model_id)
            store.save()
        return JSONResponse({"id": model_id, "object": "model", "deleted": True})

    # --- chat ------------------------------------------------------------------------------------------
    async def chat(request: Request) -> Response:
        body = await json_body(request)
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "'messages' must be a non-empty list of message objects.", param="messages")
        if body.get("stream"):
            raise ApiError(400, "The emulator does not stream; call without stream=True.", param="stream")
        n = _int_option(body, "n", default=1, low=1, high=128)
        limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        limit = _int_option(body, limit_key, default=None, low=1, high=1_000_000)
        nn = core.chat_model(model)
        answer = base_model_answer(model, messages) if nn is None else nn.answer(messages)
        message, finish, c_tokens = _reply(answer, limit)
        p_tokens = prompt_tokens(messages)
        choices = [
            {
                "index": i,
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
            }
            for i in range(n)
        ]
        return JSONResponse(
            {
                "id": "chatcmpl-" + secrets.token_hex(12),
                "object": "chat.completion",
                "created": int(core.now()),
                "model": model,
                "choices": choices,
                "system_fingerprint": "fp_emulator",
                "service_tier": "default",
                "usage": {
                    "prompt_tokens": p_tokens,
                    "completion_tokens": c_tokens * n,
                    "total_tokens": p_tokens + c_tokens * n,
                },
            }
        )

    j = "/v1/fine_tuning/jobs"
    return [
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/uploads", create_upload, methods=["POST"]),
        Route("/v1/uploads/{upload_id}/parts", add_part, methods=["POST"]),
        Route("/v1/uploads/{upload_id}/complete", complete_upload, methods=["POST"]),
        Route("/v1/uploads/{upload_id}/cancel", cancel_upload, methods=["POST"]),
        Route(j, create_job, methods=["POST"]),
        Route(j, list_jobs, methods=["GET"]),
        Route(j + "/{job_id}", get_job, methods=["GET"]),
        Route(j + "/{job_id}/cancel", job_action(lifecycle.cancel), methods=["POST"]),
        Route(j + "/{job_id}/pause", job_action(lifecycle.pause), methods=["POST"]),
        Route(j + "/{job_id}/resume", job_action(lifecycle.resume), methods=["POST"]),
        Route(j + "/{job_id}/events", list_events, methods=["GET"]),
        Route(j + "/{job_id}/checkpoints", list_checkpoints, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/v1/models/{model:path}", delete_model, methods=["DELETE"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
