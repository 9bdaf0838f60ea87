"""``finetune-wb serve``: the OpenAI-compatible fine-tuning server with a real trainer behind it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finetune_wb.cli._common import serve_until_stopped


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve OpenAI's files / fine-tuning / models / chat routes over a real trainer (TRL) on this machine",
        description=(
            "Serve OpenAI's fine-tuning API over a local trainer. With --trainer trl, jobs whose model is the "
            "served base model fine-tune it for real with TRL (LoRA by default) and their models answer chat "
            "requests. The first line printed is the base URL (OPENAI_BASE_URL), the second the model name "
            "jobs must use. Needs pip install 'finetune-wb[local]'. Stop it with Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--trainer",
        choices=("trl", "nearest-neighbour"),
        default="trl",
        help="what trains the jobs: trl (real training) or nearest-neighbour (the emulator's stand-in)",
    )
    parser.add_argument(
        "--model", help="the base model to offer: a Hugging Face causal LM id or a local directory"
    )
    parser.add_argument(
        "--name", default=None, help="the name jobs use for the base model (default: --model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8787, help="port to bind, 0 for any free port (default 8787)"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="where files, jobs, checkpoints and adapters are kept across restarts (default ./finetune-wb-serve)",
    )
    parser.add_argument(
        "--full", action="store_true", help="fine-tune every weight instead of a LoRA adapter"
    )
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument(
        "--max-length", type=int, default=1024, help="tokens kept per training example (default 1024)"
    )
    parser.add_argument(
        "--base-learning-rate",
        type=float,
        default=None,
        help="learning rate = learning_rate_multiplier x this (default 1e-4 with LoRA, 1e-5 with --full)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="answer length when a chat request sets none (default 64)",
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="training processes per job through accelerate launch (data parallel; default: one per visible "
        "GPU, 1 without a GPU)",
    )
    parser.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: less GPU memory, slower steps",
    )
    from finetune_wb.cli.serve_vllm import add_vllm_flags

    add_vllm_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from finetune_wb.emulator.runner import Emulator
    from finetune_wb.errors import EmulatorError

    output_dir = args.output_dir or "finetune-wb-serve"
    trainer: Any = None
    if args.trainer == "trl":
        if not args.model:
            print(
                "error: --trainer trl needs --model (a Hugging Face model id or a local directory)",
                file=sys.stderr,
            )
            return 2
        for flag, value in (
            ("--lora-r", args.lora_r),
            ("--max-length", args.max_length),
            ("--max-new-tokens", args.max_new_tokens),
        ):
            if value < 1:
                print(f"error: {flag} must be >= 1, got {value}", file=sys.stderr)
                return 2
        if args.num_processes is not None and args.num_processes < 1:
            print(f"error: --num-processes must be >= 1, got {args.num_processes}", file=sys.stderr)
            return 2
        if args.base_learning_rate is not None and not 0 < args.base_learning_rate < 1:
            print(
                f"error: --base-learning-rate must be between 0 and 1, got {args.base_learning_rate}",
                file=sys.stderr,
            )
            return 2
        from finetune_wb.emulator.trl_trainer import TrlTrainer

        try:
            trainer = TrlTrainer(
                args.model,
                served_name=args.name,
                output_dir=f"{output_dir}/trl",
                full=args.full,
                lora_r=args.lora_r,
                max_length=args.max_length,
                max_new_tokens=args.max_new_tokens,
                base_learning_rate=args.base_learning_rate,
                num_processes=args.num_processes,
                gradient_checkpointing=args.gradient_checkpointing,
            )
        except EmulatorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.serve_with == "vllm" or args.vllm_url:  # chat through vLLM (cli/serve_vllm.py)
        from finetune_wb.cli.serve_vllm import start_vllm

        served = start_vllm(args, trainer, output_dir)
        if isinstance(served, int):
            return served
        trainer = served
    emu = Emulator(persist_dir=output_dir, host=args.host, port=args.port, trainer=trainer)

    def announce() -> None:
        print(emu.base_url, flush=True)
        served = trainer.served_name if trainer is not None else "gpt-4o-mini-2024-07-18"
        print(f"model: {served}", flush=True)
        print(
            f"finetune-wb serve: {args.trainer} trainer, state in {output_dir}; Ctrl-C or SIGTERM to stop",
            file=sys.stderr,
            flush=True,
        )

    return serve_until_stopped(emu, announce)
