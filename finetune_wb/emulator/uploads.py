"""The /v1/files and /v1/uploads routes. Contents go to disk as they arrive and are joined on disk, so the
memory a request takes does not grow with the size of the file; the copying runs off the event loop."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator.bodies import api_json
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.limits import MB, too_large
from finetune_wb.emulator.state import FILE_PURPOSES, ApiError, new_id, paginate, parse_limit


def file_routes(core: Core) -> list[Route]:
    store = core.store
    limits = core.limits

    def save_incoming(src: BinaryIO) -> Path:
        """Copy an uploaded (spooled) file into the blob directory in 1 MB pieces."""
        src.seek(0)
        tmp = store.incoming_path()
        with tmp.open("wb") as out:
            shutil.copyfileobj(src, out, MB)
        return tmp

    async def form_file(
        request: Request, field: str, *, cap: int, what: str, purpose: bool = False
    ) -> tuple[Path, str, str]:
        """The file field ``field`` of a multipart request saved to disk, its ``purpose`` and file name."""
        # `async with` closes the form's spooled temporary files (else a ResourceWarning in the process that
        # hosts the emulator, e.g. a user's pytest run with -W error)
        async with request.form() as form:
            given = form.get("purpose")
            if purpose and (not isinstance(given, str) or given not in FILE_PURPOSES):
                raise ApiError(
                    400, f"Invalid purpose {given!r}; use one of {', '.join(FILE_PURPOSES)}.", param="purpose"
                )
            upload = form.get(field)
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    400,
                    f"Missing required parameter: '{field}' (multipart file field).",
                    param=field,
                    code="missing_required_parameter",
                )
            if upload.size is not None and upload.size > cap:
                raise too_large(what, upload.size, param=field)
            tmp = await run_in_threadpool(save_incoming, upload.file)
            return tmp, str(given), upload.filename or "upload"

    # --- files -----------------------------------------------------------------------------------------
    async def create_file(request: Request) -> Response:
        what = f"a file (files are at most {limits.file} bytes)"
        tmp, purpose, filename = await form_file(request, "file", cap=limits.file, what=what, purpose=True)
        obj = await run_in_threadpool(
            lambda: store.add_file(source=tmp, filename=filename, purpose=purpose, now=core.now())
        )
        return JSONResponse(obj)

    def list_files(request: Request) -> Response:
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

    def get_file(request: Request) -> Response:
        return JSONResponse(store.get_file(request.path_params["file_id"]))

    def file_content(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        store.get_file(file_id)
        return FileResponse(store.blob_path(file_id), media_type="application/octet-stream")  # streamed

    def delete_file(request: Request) -> Response:
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
        body = await api_json(request)
        size, purpose, filename = body.get("bytes"), body.get("purpose"), body.get("filename")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > limits.upload:
            raise ApiError(
                400, f"Invalid 'bytes': an integer between 0 and {limits.upload} (8 GB).", param="bytes"
            )
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

        def keep() -> None:
            with store.lock:
                store.uploads[obj["id"]] = obj
                store.save()

        await run_in_threadpool(keep)
        return JSONResponse(obj)

    async def add_part(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        get_upload(upload_id, pending=True)
        what = f"an upload part (parts are at most {limits.upload_part} bytes)"
        tmp, _, _ = await form_file(request, "data", cap=limits.upload_part, what=what)
        part = {
            "id": new_id("part_"),
            "object": "upload.part",
            "created_at": int(core.now()),
            "upload_id": upload_id,
        }

        def keep() -> None:
            with store.lock:
                size = tmp.stat().st_size
                tmp.replace(store.blob_path(part["id"]))  # the part stays on disk until the upload completes
                store.parts[part["id"]] = {**part, "bytes": size}
                store.save()

        await run_in_threadpool(keep)
        return JSONResponse(part)

    def join_parts(paths: list[Path]) -> Path:
        tmp = store.incoming_path()
        try:
            with tmp.open("wb") as out:
                for path in paths:
                    with path.open("rb") as src:
                        shutil.copyfileobj(src, out, MB)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def complete(upload_id: str, body: dict[str, Any]) -> dict[str, Any]:
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
                    f"The parts add up to {total} bytes but the upload was created for {upload['bytes']} bytes.",
                    param="bytes",
                    code="upload_size_mismatch",
                )
        # joined on disk without the lock: other requests go on meanwhile
        try:
            tmp = join_parts([store.blob_path(p) for p in part_ids])
        except FileNotFoundError:
            with store.lock:
                get_upload(upload_id, pending=True)  # completed or cancelled meanwhile: the 400 says so
            raise
        with store.lock:
            try:
                upload = get_upload(upload_id, pending=True)
            except ApiError:
                tmp.unlink(missing_ok=True)
                raise
            file = store.add_file(
                source=tmp, filename=upload["filename"], purpose=upload["purpose"], now=core.now()
            )
            upload.update(status="completed", file=file)
            store.drop_parts(upload_id)
            store.save()
            return dict(upload)

    async def complete_upload(request: Request) -> Response:
        body = await api_json(request)
        return JSONResponse(await run_in_threadpool(complete, request.path_params["upload_id"], body))

    def cancel_upload(request: Request) -> Response:
        with store.lock:
            upload = get_upload(request.path_params["upload_id"], pending=True)
            upload["status"] = "cancelled"
            store.drop_parts(upload["id"])
            store.save()
            return JSONResponse(upload)

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
    ]
