"""EvalReport views (headline numbers, the --json object) and the statistics in a report, by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import ModelTarget, Score, evaluate, evaluator, stats
from finetune_wb.evaluation.evaluators import to_score
from finetune_wb.schema import ChatExample
from tests.fakes.chat import FAST_RETRY, FakeChat, make_examples


def yes_no_examples(targets: list[str]) -> list[ChatExample]:
    return [
        ChatExample.model_validate(
            {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": t}]}
        )
        for i, t in enumerate(targets)
    ]


def scripted(answers: dict[str, list[str]]) -> FakeChat:
    """A fake server where model M answers row i with answers[M][i] (the row is read from the prompt)."""
    return FakeChat(answer=lambda model, messages: answers[model][int(messages[-1]["content"][1:])])


def run(fake: FakeChat, examples: Any, **kw: Any) -> Any:
    kw.setdefault("cache", None)
    return evaluate(examples, client=fake.client(), progress=False, retry=FAST_RETRY, **kw)


def test_mcnemar_p_value_and_intervals_in_a_report_match_hand_computed_values() -> None:
    # 10 rows: A right on all; B wrong on rows 0-4 and right on 5-9 -> b = 5 discordant for A, c = 0.
    targets = ["Yes"] * 10
    answers = {"a": ["Yes"] * 10, "b": ["No"] * 5 + ["Yes"] * 5}
    report = run(scripted(answers), yes_no_examples(targets), models=["a", "b"])
    comp = report.comparison("a", "b", "exact_match")
    assert (comp.a_only, comp.b_only, comp.n) == (5, 0, 10)
    assert comp.test == "mcnemar_exact"
    assert comp.p_value == pytest.approx(2 / 32)  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    assert comp.difference == pytest.approx(0.5)
    assert report.metric("a", "exact_match") == 1.0 and report.metric("b", "exact_match") == 0.5
    # all-pass: the interval collapses onto the mean
    a = report.metrics["a"]["exact_match"]
    assert (a.ci_low, a.ci_high) == (1.0, 1.0)


def test_bootstrap_interval_of_two_values_is_their_range() -> None:
    # resampling [0, 1] gives means 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4: the 2.5 % and 97.5 %
    # percentiles are 0 and 1 whatever the seed
    for seed in range(5):
        assert stats.bootstrap_ci([0.0, 1.0], seed=seed) == (0.0, 1.0)
    # [0, 0, 0, 1]: P(mean = 0) = (3/4)^4 = 0.316 > 2.5 %, so the low end is 0; P(mean = 1) = 1/256 < 2.5 %
    low, high = stats.bootstrap_ci([0.0, 0.0, 0.0, 1.0], seed=0)
    assert low == 0.0 and high == pytest.approx(0.75)  # P(mean >= 3/4) = 13/256 ~ 5 % > 2.5 %


def test_classification_headline_is_accuracy_with_f1_in_details() -> None:
    targets = ["Yes", "Yes", "No", "No", "Maybe"]
    answers = {"m": ["Yes", "No", "No", "Yes", "Yes"]}
    report = run(scripted(answers), yes_no_examples(targets), models="m", evaluators=["classification"])
    assert report.metric("m", "classification") == pytest.approx(2 / 5)
    details = report.metrics["m"]["classification"].details
    assert details["accuracy"] == pytest.approx(2 / 5)
    # Yes: tp 1, fp 2, fn 1 -> p 1/3 r 1/2 f1 0.4; No: tp 1 fp 1 fn 1 -> 0.5; Maybe: 0
    assert details["per_class"]["Yes"]["f1"] == pytest.approx(0.4)
    assert details["macro_f1"] == pytest.approx((0.4 + 0.5 + 0.0) / 3)
    assert details["micro_f1"] == pytest.approx(2 / 5)
    out = report.to_json()
    assert out["metrics"]["m"]["classification"] == pytest.approx(2 / 5)
    assert out["metric_details"]["m"]["classification"]["details"]["macro_f1"] == details["macro_f1"]


def test_to_json_shape_and_metric_values() -> None:
    fake = FakeChat()
    fake.reject = lambda model, q: 400 if q.startswith("q1") else None  # one unanswered row per model
    report = run(fake, make_examples(3), models=["ft:x", "base"])
    out = json.loads(json.dumps(report.to_json()))  # plain JSON, no NaN
    assert out["metrics"] == report.metric_values
    assert all(isinstance(v, float) for per in out["metrics"].values() for v in per.values())
    assert out["metric_details"]["base"]["exact_match"]["n"] == 2
    assert out["metric_details"]["base"]["exact_match"]["n_unscored"] == 1
    assert len(out["rows"]) == 6
    missing = [r for r in out["rows"] if r["output"] is None]
    assert len(missing) == 2 and all(r["scores"] == {} and "HTTP 400" in r["error"] for r in missing)
    assert set(out) >= {"metrics", "metric_details", "rows", "comparisons", "models", "evaluators"}


def test_unscorable_values_are_left_out_not_scored() -> None:
    assert to_score(float("nan"), name="x").value is None
    assert to_score(Score(value=math.inf), name="x").value is None
    import numpy as np

    assert to_score(np.bool_(True), name="x") == Score(value=1.0, binary=True)
    assert to_score(np.float32(0.25), name="x").value == 0.25

    @evaluator
    def sometimes_nan(output: str, example: ChatExample) -> float:
        return float("nan") if example.prompt_messages()[-1]["content"] == "q0" else 1.0

    report = run(
        scripted({"m": ["Yes", "Yes"]}),
        yes_no_examples(["Yes", "Yes"]),
        models="m",
        evaluators=[sometimes_nan],
    )
    assert report.metric("m", "sometimes_nan") == 1.0
    assert report.metrics["m"]["sometimes_nan"].n == 1
    assert report.rows[0].scores == {} and "sometimes_nan" in report.rows[0].notes
    json.dumps(report.to_json(), allow_nan=False)


def test_models_as_pairs_dicts_and_targets(tmp_path: Path) -> None:
    here, there = FakeChat(), FakeChat()
    ex = make_examples(2)
    report = evaluate(
        ex,
        models={"ft:a": here.client(), "base": there.client("http://there.test/v1")},
        cache=None,
        progress=False,
    )
    assert [m.base_url for m in report.models] == ["http://fake.test/v1", "http://there.test/v1"]
    assert len(here.requests) == len(there.requests) == 2
    report = evaluate(
        ex,
        models=[("ft:a", here.client()), ModelTarget("base", client=there.client())],
        cache=None,
        progress=False,
    )
    assert report.ok and len(here.requests) == len(there.requests) == 4
    report = evaluate(ex, models=("ft:a", here.client()), cache=None, progress=False)
    assert [m.label for m in report.models] == ["ft:a"]
    with pytest.raises(EvaluationError, match="is not a model"):
        evaluate(ex, models=[42], cache=None, progress=False)


def test_evaluator_spec_strings_work_from_python() -> None:
    report = run(
        scripted({"m": ["Yes", "No"]}),
        yes_no_examples(["Yes", "Yes"]),
        models="m",
        evaluators=["contains:yes", "classification:Yes|No", "exact_match:name=em,ignore_case=false"],
    )
    assert report.metric_values == {"m": {"contains": 0.5, "classification": 0.5, "em": 0.5}}
    assert report.evaluators[1].params["labels"] == ["Yes", "No"]


def test_an_example_without_a_prompt_is_an_input_error() -> None:
    fake = FakeChat()
    bad = ChatExample.model_validate({"messages": [{"role": "assistant", "content": "Yes"}]})
    with pytest.raises(EvaluationError, match=r"examples\[1\]: nothing to ask"):
        run(fake, [*yes_no_examples(["Yes"]), bad], models="m")
    assert fake.requests == []
