"""``finetune-wb serve --serve-with vllm``: the flags, and starting vLLM before the server answers."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def add_vllm_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("serving through vLLM (--trainer trl only)")
    group.add_argument(
        "--serve-with",
        choices=("transformers", "vllm"),
        default="transformers",
        help="what answers chat requests: transformers generation in this process (default), or a vLLM "
        "server with the LoRA adapters loaded at runtime (needs pip install vllm)",
    )
    group.add_argument(
        "--vllm-url",
        default=None,
        help="use the vLLM server already running at this URL (e.g. http://127.0.0.1:8000) instead of "
        "starting one; it must serve the base model under the name jobs use, with --enable-lora and "
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True. Implies --serve-with vllm",
    )
    group.add_argument(
        "--vllm-port", type=int, default=0, help="port of the vLLM child on 127.0.0.1 (default: a free one)"
    )
    group.add_argument(
        "--vllm-max-loras",
        type=int,
        default=4,
        help="adapters vLLM keeps on the GPU at once, its --max-loras (default 4); more are swapped in",
    )
    group.add_argument(
        "--vllm-max-lora-rank",
        type=int,
        default=None,
        help="vLLM's --max-lora-rank (default: the smallest value vLLM accepts that is >= --lora-r)",
    )
    group.add_argument(
        "--vllm-gpu-memory-utilization",
        type=float,
        default=0.5,
        help="share of the GPU memory vLLM takes (default 0.5: the rest is left to the training jobs)",
    )
    group.add_argument(
        "--vllm-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for vllm serve, repeatable (e.g. --vllm-arg=--max-model-len=4096)",
    )
    group.add_argument(
        "--vllm-command",
        default=None,
        help="how to run vllm, split like a shell line (default: the vllm installed beside this Python or "
        "on PATH), e.g. '/opt/vllm-env/bin/vllm'",
    )
    group.add_argument(
        "--vllm-startup-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for vLLM's GET /health (default 900: downloading a model takes a while)",
    )


def start_vllm(args: argparse.Namespace, trainer: Any, output_dir: str) -> Any:
    """The trainer wrapped in a :class:`VllmServing` whose vLLM is up, or an exit code (2: usage, 1: vLLM
    did not start). Errors go to stderr."""
    from pathlib import Path

    from finetune_wb.emulator.vllm_backend import VllmServing
    from finetune_wb.emulator.vllm_server import (
        VLLM_INSTALL_HINT,
        VLLM_LORA_RANKS,
        VllmError,
        VllmServer,
        default_vllm_command,
        vllm_lora_rank,
    )

    def usage(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 2

    if args.trainer != "trl":
        return usage("--serve-with vllm serves the models of --trainer trl; use --trainer trl --model ...")
    if args.vllm_max_loras < 1:
        return usage(f"--vllm-max-loras must be >= 1, got {args.vllm_max_loras}")
    if not 0 < args.vllm_gpu_memory_utilization <= 1:
        return usage(
            f"--vllm-gpu-memory-utilization must be in (0, 1], got {args.vllm_gpu_memory_utilization}"
        )
    if not 0 <= args.vllm_port <= 65535:
        return usage(f"--vllm-port must be between 0 and 65535, got {args.vllm_port}")
    rank = args.vllm_max_lora_rank
    if rank is None:
        try:
            rank = vllm_lora_rank(args.lora_r)
        except VllmError as exc:
            return usage(str(exc))
    elif rank not in VLLM_LORA_RANKS:
        return usage(
            f"--vllm-max-lora-rank must be one of {', '.join(map(str, VLLM_LORA_RANKS))}, got {rank}"
        )
    elif rank < args.lora_r:
        return usage(
            f"--vllm-max-lora-rank {rank} is smaller than --lora-r {args.lora_r}: vLLM could not load the adapters"
        )
    command = shlex.split(args.vllm_command) if args.vllm_command else None
    if args.vllm_url is None and command is None and default_vllm_command() is None:
        return usage(
            f"--serve-with vllm needs vLLM, which is not installed: {VLLM_INSTALL_HINT} (or pass --vllm-url "
            "of a running vLLM server, or --vllm-command)"
        )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    server = VllmServer(
        trainer.model,
        served_name=trainer.served_name,
        url=args.vllm_url,
        command=command,
        port=args.vllm_port,
        max_loras=args.vllm_max_loras,
        max_lora_rank=rank,
        gpu_memory_utilization=args.vllm_gpu_memory_utilization,
        extra_args=args.vllm_arg,
        startup_timeout_s=args.vllm_startup_timeout,
        log_path=Path(output_dir) / "vllm.log",
    )
    where = args.vllm_url or "a vLLM child process"
    print(f"finetune-wb serve: starting {where} for {trainer.model} ...", file=sys.stderr, flush=True)
    try:
        server.start()
    except VllmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"finetune-wb serve: vLLM at {server.url} serves {server.served_name}"
        + (f" (pid {server.proc.pid}, log {server.log_path})" if server.proc else "")
        + ("; --full: fine-tuned models answer through transformers" if args.full else ""),
        file=sys.stderr,
        flush=True,
    )
    return VllmServing(trainer, server)
