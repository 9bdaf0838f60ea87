"""Candidate specs and prompt-only strategies: fixed few-shot balanced by answer, retrieval by similarity."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_wb.migration import MigrationInputError, build_candidates, parse_candidate
from finetune_wb.migration.candidates import CandidateSpec, TrainingPool
from tests.migration.helpers import write_jsonl


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("gpt-5-mini", CandidateSpec("gpt-5-mini")),
        ("gpt-5-mini+fewshot:8", CandidateSpec("gpt-5-mini", "fewshot", 8)),
        (
            " ft:gpt-4o-mini-2024-07-18:org:x:abc+retrieval:3 ",
            CandidateSpec("ft:gpt-4o-mini-2024-07-18:org:x:abc", "retrieval", 3),
        ),
    ],
)
def test_specs_parse_and_name_themselves(spec: str, want: CandidateSpec) -> None:
    got = parse_candidate(spec)
    assert got == want and parse_candidate(got.name) == got


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "gpt-5-mini+fewshot",
        "gpt-5-mini+fewshot:x",
        "gpt-5-mini+zeroshot:3",
        "gpt-5-mini+fewshot:0",
        "gpt-5-mini+fewshot:65",
        "a b",
    ],
)
def test_bad_specs_say_what_a_spec_looks_like(spec: str) -> None:
    with pytest.raises(MigrationInputError, match=r"MODEL\+fewshot:K|K must be"):
        parse_candidate(spec)


def _example(user: str, answer: str, system: str = "Label the ticket.") -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def _train(tmp_path: Path) -> Path:
    rows = [_example(f"my invoice {i} was charged twice, refund the payment", "billing") for i in range(6)]
    rows += [_example(f"the app crashes on login screen version {i}", "bug") for i in range(3)]
    rows += [_example("please add a dark mode theme", "feature")]
    rows += [_example("something odd", "bug", system="A rare other system prompt")]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_fixed_few_shot_is_balanced_by_answer(tmp_path: Path) -> None:
    pool = TrainingPool.from_file(_train(tmp_path))
    assert pool.system == "Label the ticket."
    picked = pool.representative(3)
    assert sorted(pool.answers[i] for i in picked) == ["billing", "bug", "feature"]
    five = [pool.answers[i] for i in pool.representative(5)]
    assert five.count("billing") == 2 and five.count("bug") == 2 and five.count("feature") == 1
    assert len(pool.representative(50)) == len(pool.answers)


def test_retrieval_picks_the_most_similar_examples_per_prompt(tmp_path: Path) -> None:
    (cand,) = build_candidates(["m+retrieval:2"], train=_train(tmp_path))
    prompt = [{"role": "user", "content": "login crashes the app again"}]
    shots = cand.shots_for(prompt)
    assert [cand.pool.answers[i] for i in shots] == ["bug", "bug"]  # type: ignore[union-attr]
    other = cand.shots_for([{"role": "user", "content": "refund my double charged invoice"}])
    assert [cand.pool.answers[i] for i in other] == ["billing", "billing"]  # type: ignore[union-attr]


def test_messages_put_system_then_shots_then_the_prompt(tmp_path: Path) -> None:
    train = _train(tmp_path)
    plain, fixed = build_candidates(["m", "m+fewshot:2"], train=train)
    prompt = [{"role": "user", "content": "dark mode please"}]
    assert plain.messages_for(prompt) == prompt
    msgs = fixed.messages_for(prompt)
    assert msgs[0] == {"role": "system", "content": "Label the ticket."}
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[-1] == prompt[0]
    own = [{"role": "system", "content": "Mine."}, *prompt]
    assert fixed.messages_for(own)[0] == {
        "role": "system",
        "content": "Mine.",
    }  # the prompt's own system wins
    assert fixed.shots_for(prompt) == fixed.shots_for([{"role": "user", "content": "anything"}])  # fixed


def test_few_shot_needs_a_training_file_with_answers(tmp_path: Path) -> None:
    with pytest.raises(MigrationInputError, match="need the fine-tune's training file"):
        build_candidates(["m+fewshot:2"])
    with pytest.raises(MigrationInputError, match="does not exist"):
        build_candidates(["m+fewshot:2"], train=tmp_path / "missing.jsonl")
    no_answers = write_jsonl(tmp_path / "p.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(MigrationInputError, match="no line ends with an assistant answer"):
        build_candidates(["m+retrieval:2"], train=no_answers)
    with pytest.raises(MigrationInputError, match="more than once"):
        build_candidates(["m", "m"])
    assert build_candidates(["m"])[0].pool is None  # a plain candidate needs no training file
