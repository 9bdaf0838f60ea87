"""The emulator's answering rules (models.py) and its clock, without a server."""

from __future__ import annotations

import pytest

from finetune_wb.emulator import ManualClock
from finetune_wb.emulator.answerers import (
    NearestNeighbourModel,
    base_model_answer,
    count_tokens,
    pairs_from_line,
    prompt_text,
    prompt_tokens,
)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_pairs_take_user_text_before_the_last_assistant_message() -> None:
    line = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "thinking"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
            {"role": "assistant", "content": "final"},
        ]
    }
    assert pairs_from_line(line) == ("first\nsecond", "final")
    assert pairs_from_line({"messages": [{"role": "user", "content": "q"}]}) is None
    dpo = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    assert pairs_from_line(dpo) == ("q", "good")
    assert prompt_text([{"role": "system", "content": "only system"}]) == "only system"


def test_nearest_neighbour_exact_then_similar_then_majority() -> None:
    model = NearestNeighbourModel(
        [
            ("The cat sat on the mat", "cat"),
            ("A dog barked at the mailman", "dog"),
            ("The cat sat on the mat", "second cat"),  # duplicate prompt: the earlier line wins
            ("Birds sing at dawn", "dog"),
        ]
    )
    assert model.answer(user("  the CAT sat on the   mat ")) == "cat"
    assert model.answer(user("why did the dog bark?")) == "dog"
    assert model.answer(user("birds at dawn")) == "dog"
    assert model.answer(user("zzz qqq")) == "dog"  # nothing shared: the most frequent answer


def test_base_model_wraps_a_deterministic_label_in_a_sentence() -> None:
    yes_no = base_model_answer("gpt-4o-mini", user("Is this clause explicit? Answer Yes or No."))
    assert yes_no == base_model_answer("gpt-4o-mini", user("Is this clause explicit? Answer Yes or No."))
    assert yes_no not in ("Yes", "No") and ("Yes" in yes_no or "No" in yes_no)
    labels = {base_model_answer("gpt-4o-mini", user(f"Case {i}: guilty or innocent?")) for i in range(40)}
    assert any("guilty" in a for a in labels) and any("innocent" in a for a in labels)
    tf = base_model_answer("gpt-4o", user("true or false: water is wet"))
    assert "True" in tf or "False" in tf


def test_token_counts_are_word_and_punctuation_counts() -> None:
    assert count_tokens("Hello, world!") == 4
    assert prompt_tokens([{"role": "user", "content": "Hello, world!"}]) == 3 + 3 + 4


def test_manual_clock() -> None:
    clock = ManualClock(start=100.0)
    assert clock.now() == 100.0
    assert clock.advance(2.5) == 102.5
    clock.set(200.0)
    assert clock.now() == 200.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(150.0)
