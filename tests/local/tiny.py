"""A tiny random-initialised Llama and a tokenizer trained on the fly (no download), plus a toy task.

The toy task: ``"word: X"`` -> ``"Yes"`` when X is a fruit, ``"No"`` otherwise. The answer depends on one
token right before the assistant turn, so a two-layer model of width 64 learns it in a few dozen steps on
a CPU; its untrained base answers noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FRUITS = ("apple", "pear", "plum", "grape", "mango", "lemon", "peach", "cherry", "melon", "kiwi")
OTHERS = ("stone", "chair", "cloud", "river", "brick", "spoon", "table", "glass", "paper", "road")
SPECIALS = ["<|pad|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]

# Renders prefix by prefix; tools go into a leading block; tool calls as <tool_call>{json}</tool_call>.
CHAT_TEMPLATE = (
    "{% if tools %}<|system|>tools: {{ tools | tojson }}{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('unsupported role: ' + m['role']) }}{% endif %}"
    "<|{{ m['role'] }}|>"
    "{% if m.get('tool_calls') %}{% for c in m['tool_calls'] %}<tool_call>"
    "{{ {'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson }}"
    "</tool_call>{% endfor %}{% else %}{{ m['content'] }}{% endif %}"
    "{% if m['role'] == 'assistant' %}<|eos|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def toy_examples(n_repeat: int = 2) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n_repeat):
        for fruit, other in zip(FRUITS, OTHERS, strict=True):
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": f"word: {fruit}"},
                        {"role": "assistant", "content": "Yes"},
                    ]
                }
            )
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": f"word: {other}"},
                        {"role": "assistant", "content": "No"},
                    ]
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_model(folder: Path, *, chat_template: str = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Save a random-initialised 2-layer Llama (hidden size 64) and its tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [f"word: {w}" for w in FRUITS + OTHERS] + ["Yes", "No", "tools: get_weather city Paris"] * 3
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|eos|>", bos_token=None, unk_token=None
    )
    fast.chat_template = chat_template
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
