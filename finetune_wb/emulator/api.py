"""The /v1 routes: files, uploads, fine-tuning jobs, models and chat completions."""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from finetune_wb.emulator import creation, lifecycle
from finetune_wb.emulator.batches import batch_routes
from finetune_wb.emulator.bodies import api_json, check_json_content_type
from finetune_wb.emulator.chat import chat_completion
from finetune_wb.emulator.core import Core
from finetune_wb.emulator.state import (
    BASE_MODEL_CREATED,
    BASE_MODELS,
    ORG_ID,
    ApiError,
    paginate,
    parse_limit,
)
from finetune_wb.emulator.uploads import file_routes

_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")


def routes(core: Core) -> list[Route]:
    store = core.store

    # --- fine-tuning jobs ------------------------------------------------------------------------------
    async def create_job(request: Request) -> Response:
        body = await api_json(request)
        core.shutdowns.check_fine_tuning(body.get("model"), core.now())
        job = await run_in_threadpool(
            creation.create_job,
            store,
            body,
            now=core.now(),
            pace=core.pace,
            models=core.trainer.base_models(),
            external=core.trainer.name != "nearest-neighbour",
        )
        return JSONResponse(job)

    def list_jobs(request: Request) -> Response:
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

    def get_job(request: Request) -> Response:
        return JSONResponse(store.get_job(request.path_params["job_id"]))

    def job_action(action: Any) -> Any:
        def handler(request: Request) -> Response:
            with store.lock:
                job = store.get_job(request.path_params["job_id"])
                action(store, job, core.now())
                return JSONResponse(job)

        return handler

    def job_listing(kind: str, default_limit: int) -> Any:
        """GET a job's events or checkpoints: newest first, cursor-paginated."""

        def handler(request: Request) -> Response:
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
        if model_id in BASE_MODELS or model_id in core.trainer.base_models():
            return {
                "id": model_id,
                "object": "model",
                "created": BASE_MODEL_CREATED,
                "owned_by": "system",
                **core.shutdowns.fields(model_id),
            }
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
            **core.shutdowns.fields(model_id),
        }

    def list_models(request: Request) -> Response:
        with store.lock:
            ids = list(BASE_MODELS) + [m for m in core.trainer.base_models() if m not in BASE_MODELS]
            ids += [
                j["fine_tuned_model"]
                for j in store.jobs.values()
                if j.get("fine_tuned_model") and j["fine_tuned_model"] not in store.deleted_models
            ]
            return JSONResponse({"object": "list", "data": [model_object(i) for i in ids]})

    def get_model(request: Request) -> Response:
        with store.lock:
            return JSONResponse(model_object(request.path_params["model"]))

    def delete_model(request: Request) -> Response:
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
        raw = await request.body()
        check_json_content_type(request, raw)
        # parsing, checking and answering a big request run in a thread: the server keeps answering others
        return JSONResponse(await run_in_threadpool(chat_completion, core, raw))

    j = "/v1/fine_tuning/jobs"
    return [
        *file_routes(core),
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
        *batch_routes(core),
    ]
