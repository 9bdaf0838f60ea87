"""A stand-in for ``vllm serve`` (vLLM's OpenAI server) in tests: the same command line and the routes
finetune-wb uses, answered the way vLLM answers them, without a GPU or a model.

    python tests/fakes/fake_vllm.py serve MODEL --host 127.0.0.1 --port N --served-model-name NAME \\
        --enable-lora --max-loras 4 --max-lora-rank 16 --gpu-memory-utilization 0.5

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``
(only with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, as in vLLM; else FastAPI's 404 ``{"detail": "Not
Found"}``), ``POST /v1/chat/completions``. Errors are vLLM's ``{"error": {"message", "type", "param",
"code"}}`` with its messages. A chat answer is the adapter directory's ``fake_answer.txt`` (or
``"<model> answers"``), so a test sees which adapter answered.

Test controls (environment): ``FAKE_VLLM_JOURNAL`` a JSONL file that gets one line per start, load, unload,
chat and stop; ``FAKE_VLLM_FAIL_AT_START`` a message printed to stderr before exiting 1 (as vLLM does when
the model does not fit); ``FAKE_VLLM_STARTUP_DELAY_S`` seconds before it listens; ``FAKE_VLLM_CHAT_DELAY_S``
seconds each chat answer takes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("model")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--served-model-name", nargs="+", default=None)
    serve.add_argument("--enable-lora", action="store_true")
    serve.add_argument("--max-loras", type=int, default=1)
    serve.add_argument("--max-lora-rank", type=int, choices=RANKS, default=16)
    serve.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    serve.add_argument("--max-model-len", type=int, default=2048)
    return parser.parse_args(argv)


def journal(**entry: Any) -> None:
    path = os.environ.get("FAKE_VLLM_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "time": time.time(), **entry}) + "\n")


def error(message: str, err_type: str, status: int, param: str | None = None) -> Any:
    from starlette.responses import JSONResponse

    body = {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def build_app(args: argparse.Namespace) -> Any:
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    base = (args.served_model_name or [args.model])[0]
    loras: dict[str, dict[str, Any]] = {}
    in_flight = {"now": 0, "max": 0}
    chat_delay = float(os.environ.get("FAKE_VLLM_CHAT_DELAY_S", "0"))

    async def health(request: Request) -> Response:
        return Response(status_code=200)

    async def models(request: Request) -> Response:
        card = {"object": "model", "created": int(time.time()), "owned_by": "vllm", "max_model_len": None}
        data = [{**card, "id": base, "root": args.model, "parent": None, "max_model_len": args.max_model_len}]
        data += [{**card, "id": n, "root": lo["path"], "parent": base} for n, lo in loras.items()]
        return JSONResponse({"object": "list", "data": data})

    async def body_of(request: Request) -> dict[str, Any]:
        data = json.loads(await request.body() or b"{}")
        return data if isinstance(data, dict) else {}

    async def load(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return error("Unsupported Media Type: Only 'application/json' is allowed", "BadRequestError", 415)
        body = await body_of(request)
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return error("Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput", 400)
        if not body.get("load_inplace") and name in loras:
            return error(
                f"The lora adapter '{name}' has already been loaded. If you want to load the adapter in place, "
                "set 'load_inplace' to True.",
                "InvalidUserInput",
                400,
            )
        config = Path(path) / "adapter_config.json"
        if not config.is_file():
            return error(f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError", 404)
        rank = int(json.loads(config.read_text(encoding="utf-8")).get("r", 8))
        if rank > args.max_lora_rank:
            return error(
                f"LoRA rank {rank} is greater than max_lora_rank {args.max_lora_rank}.",
                "InternalServerError",
                500,
            )
        loras[name] = {"path": path, "rank": rank}
        journal(event="load", name=name, path=path)
        return Response(f"Success: LoRA adapter '{name}' added successfully.", status_code=200)

    async def unload(request: Request) -> Response:
        body = await body_of(request)
        name = body.get("lora_name")
        if not name:
            return error(
                "'lora_name' needs to be provided to unload a LoRA adapter.", "InvalidUserInput", 400
            )
        if name not in loras:
            return error(f"The lora adapter '{name}' cannot be found.", "NotFoundError", 404)
        del loras[name]
        journal(event="unload", name=name)
        return Response(f"Success: LoRA adapter '{name}' removed successfully.", status_code=200)

    async def chat(request: Request) -> Response:
        body = await body_of(request)
        model = body.get("model")
        if model != base and model not in loras:
            return error(f"The model `{model}` does not exist.", "NotFoundError", 404, param="model")
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            if chat_delay:
                await asyncio.sleep(chat_delay)
        finally:
            in_flight["now"] -= 1
        answer = f"{model} answers"
        if model in loras and (Path(loras[model]["path"]) / "fake_answer.txt").is_file():
            answer = (Path(loras[model]["path"]) / "fake_answer.txt").read_text(encoding="utf-8").strip()
        journal(event="chat", model=model, body=body, max_in_flight=in_flight["max"])
        n = int(body.get("n") or 1)
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])
        completion = len(answer.split())
        message = {"role": "assistant", "content": answer, "refusal": None, "annotations": None, "audio": None,
                   "function_call": None, "tool_calls": [], "reasoning_content": None}  # fmt: skip
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": i,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "stop",
                        "stop_reason": None,
                    }
                    for i in range(n)
                ],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": {
                    "prompt_tokens": prompt,
                    "total_tokens": prompt + completion * n,
                    "completion_tokens": completion * n,
                    "prompt_tokens_details": None,
                },
                "prompt_logprobs": None,
                "kv_transfer_params": None,
            }
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": "Not Found"}, status_code=404)  # FastAPI's answer to an unknown route

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        journal(event="start", argv=sys.argv[1:], runtime_lora=runtime_lora(), port=args.port)
        yield
        journal(event="stop")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    if runtime_lora():
        routes += [
            Route("/v1/load_lora_adapter", load, methods=["POST"]),
            Route("/v1/unload_lora_adapter", unload, methods=["POST"]),
        ]
    return Starlette(routes=routes, exception_handlers={404: not_found}, lifespan=lifespan)


def runtime_lora() -> bool:
    return os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "0").strip().lower() in ("1", "true")


def main(argv: list[str]) -> int:
    args = parse(argv)
    failure = os.environ.get("FAKE_VLLM_FAIL_AT_START")
    if failure:
        print(f"INFO starting vLLM for {args.model}", file=sys.stderr)
        print(f"ValueError: {failure}", file=sys.stderr)
        return 1
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_DELAY_S", "0")))
    import uvicorn

    uvicorn.run(build_app(args), host=args.host or "127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
