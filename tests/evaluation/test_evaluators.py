"""Evaluators: the decorator, custom sync/async functions, and each built-in (resolution: test_resolution)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import (
    Evaluator,
    Score,
    classification,
    contains,
    evaluator,
    exact_match,
    json_match,
    json_valid,
    regex,
)
from finetune_wb.schema import ChatExample


def _ex(target: str = "Yes", user: str = "Is it?") -> ChatExample:
    return ChatExample.model_validate(
        {
            "messages": [
                {"role": "system", "content": "Answer."},
                {"role": "user", "content": user},
                {"role": "assistant", "content": target},
            ]
        }
    )


def _score(ev: Any, output: str, target: str = "Yes") -> Score:
    return asyncio.run(ev.ascore(output, target, _ex(target)))


def test_decorator_accepts_a_subset_of_arguments_by_name() -> None:
    @evaluator
    def longer_than_target(target: str, output: str) -> bool:
        return len(output) > len(target)

    @evaluator(name="mentions_user")
    def uses_example(example: ChatExample, output: str) -> float:
        return 0.5 if example.messages[1].text.split()[0] in output else 0.0

    assert isinstance(longer_than_target, Evaluator)
    assert longer_than_target.name == "longer_than_target"
    assert _score(longer_than_target, "Yes indeed") == Score(value=1.0, binary=True)
    assert _score(uses_example, "Is it so") == Score(value=0.5)
    assert uses_example.name == "mentions_user"
    # the decorated function can still be called directly
    assert longer_than_target(target="a", output="bb") is True


def test_async_evaluator_and_score_return() -> None:
    @evaluator
    async def slow(output: str, prompt: list[dict[str, Any]]) -> Score:
        await asyncio.sleep(0)
        return Score(value=len(prompt), explanation="counted")

    result = _score(slow, "x")
    assert result.value == 2.0 and result.explanation == "counted"


def test_configuration_parameters_are_recorded_and_configurable() -> None:
    @evaluator
    def within(output: str, target: str, tolerance: float = 0.1) -> bool:
        return abs(float(output) - float(target)) <= tolerance

    assert within.params == {"tolerance": 0.1}
    assert _score(within, "1.05", "1.0").value == 1.0
    loose = within.configure(tolerance=0.001)
    assert loose.params == {"tolerance": 0.001}
    assert _score(loose, "1.05", "1.0").value == 0.0


def test_parameters_without_defaults_are_rejected() -> None:
    with pytest.raises(EvaluationError, match="no default"):

        @evaluator
        def bad(output: str, threshold: float) -> bool:
            return True


def test_bad_return_type_is_reported() -> None:
    @evaluator
    def wrong(output: str) -> Any:
        return "yes"

    with pytest.raises(EvaluationError, match="returned str"):
        _score(wrong, "x")


def test_exact_match_normalisation_and_options() -> None:
    em = exact_match()
    assert _score(em, "  yes. ").value == 1.0
    assert _score(em, "YES!", "yes").value == 1.0
    assert _score(em, "no", "yes").value == 0.0
    assert _score(exact_match(), "the   answer", "The answer").value == 1.0
    assert _score(exact_match(), "-5", "5").value == 0.0  # leading signs are part of the answer
    assert _score(exact_match(), "-5.", "-5").value == 1.0
    strict = exact_match(ignore_case=False, strip_punctuation=False)
    assert _score(strict, "yes.", "Yes").value == 0.0
    assert _score(strict, "Yes", "Yes").value == 1.0
    assert strict.params == {"ignore_case": False, "normalize_whitespace": True, "strip_punctuation": False}


def test_contains_and_regex() -> None:
    assert _score(contains(), "The answer is yes, clearly").value == 1.0
    assert _score(contains(ignore_case=False), "the answer is yes").value == 0.0
    assert _score(contains("clearly"), "the answer is no, clearly").value == 1.0
    assert _score(regex(r"\byes\b", ignore_case=True), "YES it is").value == 1.0
    assert _score(regex(r"\d+", fullmatch=True), " 42 ").value == 1.0
    assert _score(regex(r"\d+", fullmatch=True), "42 apples").value == 0.0
    assert _score(regex(), "Yes or no", "^Y").value == 1.0  # the target as the pattern


def test_json_evaluators() -> None:
    assert _score(json_valid(), '{"a": 1}').value == 1.0
    assert _score(json_valid(), '```json\n{"a": 1}\n```').value == 1.0
    assert _score(json_valid(strip_fences=False), '```json\n{"a": 1}\n```').value == 0.0
    assert _score(json_valid(), "{a: 1}").value == 0.0
    assert _score(json_match(), '{"b": 2, "a": 1}', '{"a": 1, "b": 2}').value == 1.0
    assert _score(json_match(), '{"a": 1, "b": 3}', '{"a": 1, "b": 2}').value == 0.0
    assert _score(json_match(keys=["a"]), '{"a": 1, "b": 3}', '{"a": 1, "b": 2}').value == 1.0
    assert _score(json_match(), "nope", '{"a": 1}').value == 0.0
    unscorable = _score(json_match(), '{"a": 1}', "not json")
    assert unscorable.value is None


def test_classification_prediction_and_aggregate() -> None:
    clf = classification(["Yes", "No"])
    s = _score(clf, "No, it does not.", "No")
    assert (s.value, s.label) == (1.0, "No")
    s = _score(clf, "Yes.", "No")
    assert (s.value, s.label) == (0.0, "Yes")
    s = _score(clf, "It depends", "No")
    assert (s.value, s.label) == (0.0, "<other>")
    # the earliest label mentioned wins
    assert _score(clf, "Yes - not No", "Yes").label == "Yes"
    scores = [Score(value=1.0, binary=True, label="Yes"), Score(value=0.0, binary=True, label="Yes")]
    agg = clf.aggregate(scores, ["Yes", "No"])
    assert agg["confusion_matrix"] == [[1, 0], [1, 0]]
    assert agg["per_class"]["Yes"]["precision"] == 0.5


def test_classification_without_labels_uses_the_targets() -> None:
    clf = classification()
    clf.prepare(["cat", "dog", "dog"])
    assert _score(clf, "I think dog", "dog").label == "dog"
    assert _score(clf, "cat, surely", "dog").label == "cat"
