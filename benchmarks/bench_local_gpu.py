"""GPU check of local fine-tuning: the TRL job code path on a realistic small model, for a fixed step count.

Builds a random-initialised Llama-style model of about 0.5 B parameters (Qwen2.5-0.5B's shape: hidden 896,
24 layers, 14 heads, 2 KV heads, MLP 4864, vocabulary 32,000 here) and a tokenizer trained on the fly (no
download), writes synthetic chat examples of ~``--tokens`` tokens, and trains them through
:mod:`finetune_wb.emulator.trl_worker` (the same code a ``serve --trainer trl`` job runs: SFTTrainer with the
assistant-only mask, LoRA by default). It prints the step count, training tokens per second (counted from the
examples; the first step, which compiles and warms up, is left out) and the peak GPU memory.

    python benchmarks/bench_local_gpu.py [--steps 30] [--batch-size 8] [--tokens 512] [--full] [--json]
        [--num-processes N]

With several visible GPUs it trains the way a ``serve --trainer trl`` job does there: one process per GPU
through ``accelerate launch`` (:mod:`finetune_wb.emulator.trl_launch`), ``--batch-size`` being the batch of one
step over all of them; tokens/s is then the total and the peak memory that of rank 0's GPU. ``--num-processes 1``
measures one GPU. Without a CUDA GPU (or without the ``[local]`` extra) it says why it did nothing and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "clause",
    "party",
    "notice",
    "term",
]


def _why_not(allow_cpu: bool) -> str | None:
    missing = [
        m for m in ("torch", "transformers", "trl", "peft", "datasets") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return f"the [local] extra is not installed ({', '.join(missing)} missing): pip install 'finetune-wb[local]'"
    import torch

    if not torch.cuda.is_available() and not allow_cpu:
        return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    return None


def _build(folder: Path, *, vocab: int, tiny: bool) -> int:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
    tok.train_from_iterator(
        [" ".join(WORDS)] * 10,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|eos|>")
    fast.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if m['role'] == 'assistant' %}<|eos|>"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    shape = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14)
    if tiny:  # a check of this script itself on a CPU
        shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    config = LlamaConfig(
        vocab_size=vocab,
        **shape,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=True,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return int(sum(p.numel() for p in model.parameters()))


def _data(path: Path, *, n: int, tokens: int) -> None:
    import random

    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            user = " ".join(rng.choice(WORDS) for _ in range(tokens // 2))
            answer = " ".join(rng.choice(WORDS) for _ in range(tokens // 2))
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": user},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
                + "\n"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512, help="approximate tokens per example")
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--tiny-on-cpu", action="store_true", help="a 2-layer model on the CPU: checks the script only"
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="training processes (default: one per visible GPU, as serve does)",
    )
    args = parser.parse_args(argv)
    why = _why_not(args.tiny_on_cpu)
    if why is not None:
        print(f"bench_local_gpu: nothing to measure: {why}")
        return 0
    import torch

    from finetune_wb.emulator.trl_launch import resolve_num_processes, worker_command
    from finetune_wb.emulator.trl_worker import Progress, train

    n_proc = resolve_num_processes(args.num_processes)

    with tempfile.TemporaryDirectory(prefix="bench-local-gpu-") as tmp:
        root = Path(tmp)
        n_params = _build(root / "model", vocab=32000, tiny=args.tiny_on_cpu)
        _data(root / "train.jsonl", n=args.steps * args.batch_size, tokens=args.tokens)
        spec: dict[str, Any] = {
            "job_id": "bench",
            "base_model": str(root / "model"),
            "training_file": str(root / "train.jsonl"),
            "method": "supervised",
            "hyperparameters": {
                "n_epochs": 1,
                "batch_size": args.batch_size,
                "learning_rate_multiplier": 1.0,
            },
            "seed": 0,
            "output_dir": str(root / "out"),
            "full": args.full,
            "max_length": 4 * args.tokens,
        }
        (root / "out").mkdir()
        gpu = torch.cuda.is_available()
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        if n_proc > 1:  # the multi-GPU path of a job: accelerate launch, one process per GPU
            (root / "out" / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
            print(
                f"bench_local_gpu: training with {n_proc} processes through accelerate launch",
                file=sys.stderr,
            )
            run = subprocess.run(
                worker_command(sys.executable, root / "out" / "spec.json", num_processes=n_proc),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if run.returncode != 0:
                print(
                    f"bench_local_gpu: the training processes failed:\n{run.stderr[-3000:]}", file=sys.stderr
                )
                return 1
        else:
            train(spec, Progress(root / "out" / "progress.jsonl"))
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in (root / "out" / "progress.jsonl").read_text().splitlines()]
        steps = [r for r in records if r["type"] == "step"]
        begun = next(r for r in records if r["type"] == "started")
        done = next(r for r in records if r["type"] == "done")
        peak = torch.cuda.max_memory_allocated() / 2**30 if gpu and n_proc == 1 else None
        if done.get("peak_gpu_memory_gib") is not None:  # what the (rank 0) training process measured
            peak = done["peak_gpu_memory_gib"]
        tokens_per_step = begun["trained_tokens"] / max(len(steps), 1)
        timed = steps[-1]["time"] - steps[0]["time"]
        result = {
            "gpu": torch.cuda.get_device_name(0) if gpu else "none (--tiny-on-cpu)",
            "num_processes": n_proc,
            "device": begun.get("device"),
            "parameters": n_params,
            "method": "full" if args.full else "lora",
            "steps": len(steps),
            "batch_size": args.batch_size,
            "tokens_per_step": round(tokens_per_step),
            "tokens_per_s": round(tokens_per_step * (len(steps) - 1) / timed) if timed > 0 else None,
            "peak_gpu_memory_gib": round(peak, 2) if peak is not None else None,
            "wall_s_with_load_and_save": round(wall, 1),
            "first_loss": steps[0]["train_loss"],
            "last_loss": steps[-1]["train_loss"],
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
