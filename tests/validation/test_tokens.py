from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from finetune_wb.schema import ChatExample
from finetune_wb.validation.tokens import (
    TokenCounter,
    base_model,
    count_example_tokens,
    encoding_name_for_model,
)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("o1-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("babbage-002", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:acme:legal:9abc", "cl100k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::Bx1", "o200k_base"),
        ("some-unknown-model", "o200k_base"),
    ],
)
def test_encoding_table(model: str, encoding: str) -> None:
    assert encoding_name_for_model(model) == encoding


def test_base_model() -> None:
    assert base_model("ft:gpt-4o-mini-2024-07-18:org:sfx:id") == "gpt-4o-mini-2024-07-18"
    assert base_model("gpt-4o") == "gpt-4o"


def seed_num_tokens(messages: list[dict[str, Any]], enc: tiktoken.Encoding) -> int:
    """The seed notebook's formula (OpenAI cookbook), written out independently of the library."""
    num_tokens = 0
    for message in messages:
        num_tokens += 3
        for key, value in message.items():
            num_tokens += len(enc.encode(value))
            if key == "name":
                num_tokens += 1
    return num_tokens + 3


def seed_assistant_tokens(messages: list[dict[str, Any]], enc: tiktoken.Encoding) -> int:
    return sum(len(enc.encode(m["content"])) for m in messages if m["role"] == "assistant")


def legalbench_chats(legalbench_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (legalbench_dir / "examples.jsonl").read_text().splitlines()]
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer Yes or No."},
                {"role": "user", "content": r["text"], "name": "clerk"}
                if i % 3 == 0
                else {"role": "user", "content": r["text"]},
                {"role": "assistant", "content": r["answer"]},
            ]
        }
        for i, r in enumerate(rows)
    ]


@pytest.mark.parametrize("model", ["gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125"])
def test_counts_agree_with_the_seed_formula_exactly(legalbench_dir: Path, model: str) -> None:
    enc = tiktoken.get_encoding(encoding_name_for_model(model))
    counter = TokenCounter.for_model(model)
    for ex in legalbench_chats(legalbench_dir):
        total, assistant, n_messages = counter.example_tokens(ex)
        assert total == seed_num_tokens(ex["messages"], enc)
        assert assistant == seed_assistant_tokens(ex["messages"], enc)
        assert n_messages == 3
        assert count_example_tokens(ex, model=model) == total
        assert count_example_tokens(ChatExample.model_validate(ex), model=model) == total


def test_cache_is_bounded_and_gives_the_same_counts() -> None:
    counter = TokenCounter("o200k_base", max_cached_chars=50, max_string_chars=30)
    enc = tiktoken.get_encoding("o200k_base")
    texts = [f"sentence number {i} with some words" for i in range(20)] + ["x" * 100]
    for _ in range(2):
        for t in texts:
            assert counter.count(t) == len(enc.encode(t))
    assert counter._cached_chars <= 50
    assert "x" * 100 not in counter._cache  # longer than max_string_chars: never cached


def test_structured_values_are_counted() -> None:
    counter = TokenCounter("o200k_base")
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}
    plain = counter.example_tokens(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    )
    parts = counter.example_tokens(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "u"}},
                    ],
                },
                {"role": "assistant", "content": "x", "weight": 1},
            ]
        }
    )
    assert parts == plain  # text parts count like the string; images and weight add nothing
    with_tools = counter.example_tokens(
        {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}],
            "tools": [{"type": "function", "function": {"name": "add"}}],
        }
    )
    assert with_tools[0] > plain[0]


def test_dpo_example_counts_input_and_both_outputs() -> None:
    counter = TokenCounter("o200k_base")
    ex = {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "good answer"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    as_chat = counter.example_tokens(
        {"messages": [ex["input"]["messages"][0], ex["preferred_output"][0], ex["non_preferred_output"][0]]}  # type: ignore[index]
    )
    total, assistant, n = counter.example_tokens(ex)
    assert total == as_chat[0]
    assert n == 3
    assert assistant == counter.count("good answer")


def test_malformed_values_do_not_raise() -> None:
    counter = TokenCounter("o200k_base")
    for weird in (
        {"messages": "nope"},
        {"messages": [1, None, {"role": 5, "content": {"a": [1]}}]},
        {"input": 3},
        {},
    ):
        counter.example_tokens(weird)


LEAN_CHECK = r"""
import json, pickle, sys
from finetune_wb.validation.tokens import get_encoding
import tiktoken

out = {}
texts = ["Hello wörld, 1234 漢字\n\t  spaced", "<|endoftext|> is plain text here", "", "a" * 5000]
for name in ("o200k_base", "cl100k_base"):
    lean = get_encoding(name)
    full = tiktoken.get_encoding(name)  # tiktoken's own instance, loaded separately
    again = pickle.loads(pickle.dumps(lean))
    out[name] = {
        "separate": lean is not full,
        "holds_python_ranks": "_mergeable_ranks" in vars(lean),
        "same_ranks": lean._mergeable_ranks == full._mergeable_ranks,
        "same_tokens": all(lean.encode_ordinary(t) == full.encode_ordinary(t) for t in texts),
        "same_encode": lean.encode("x <|endoftext|>", allowed_special="all") == full.encode("x <|endoftext|>", allowed_special="all"),
        "n_vocab": lean.n_vocab == full.n_vocab,
        "pickles_to_itself": again is lean,
    }
print(json.dumps(out))
"""


def test_encodings_do_not_keep_tiktokens_python_copy_of_the_ranks() -> None:
    """The validator's memory margin rests on this: the ~28 MiB Python dict of token ranks is not kept,
    while encoding, ``_mergeable_ranks`` (re-read on demand) and pickling behave like tiktoken's own."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", LEAN_CHECK], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name, checks in json.loads(proc.stdout).items():
        assert checks == {
            "separate": True,
            "holds_python_ranks": False,
            "same_ranks": True,
            "same_tokens": True,
            "same_encode": True,
            "n_vocab": True,
            "pickles_to_itself": True,
        }, name


def test_an_encoding_tiktoken_already_loaded_is_shared() -> None:
    from finetune_wb.validation.tokens import _lean_encoding

    full = tiktoken.get_encoding("cl100k_base")
    assert _lean_encoding("cl100k_base") is full


def test_lone_surrogates_are_counted_like_tiktoken() -> None:
    # JSON may carry a lone surrogate ("\ud800"); the fast path's Rust call refuses it, the fallback repairs.
    text = json.loads('"caf\\u00e9 \\ud800 end"')
    counter = TokenCounter("o200k_base")
    assert counter.count(text) == len(tiktoken.get_encoding("o200k_base").encode_ordinary(text))
    example = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "a"}]}
    assert counter.example_tokens(example)[0] > 0
