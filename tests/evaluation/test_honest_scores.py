"""Classification scores say what they must beat: majority-class rate, balanced accuracy, macro-F1, kappa."""

from __future__ import annotations

import json
import math
import time

import pytest

from finetune_wb.evaluation import stats
from tests.evaluation.test_report import run, scripted, yes_no_examples

# LegalBench's test split: 69 "No", 18 "Yes". The model gets 56 of the No rows and 8 of the Yes rows right:
# accuracy 64/87 = 0.736, below always answering "No" (69/87 = 0.793).
TARGETS = ["No"] * 69 + ["Yes"] * 18
BELOW_MAJORITY = ["No"] * 56 + ["Yes"] * 13 + ["Yes"] * 8 + ["No"] * 10
STRONG = ["No"] * 69 + ["Yes"] * 16 + ["No"] * 2  # 85/87


def _report() -> object:
    answers = {"ft:legal": BELOW_MAJORITY, "strong": STRONG}
    return run(
        scripted(answers),
        yes_no_examples(TARGETS),
        models=["ft:legal", "strong"],
        evaluators=["classification"],
    )


def test_a_fine_tune_below_always_no_is_flagged_with_its_chance_aware_scores() -> None:
    report = _report()
    m = report.metrics["ft:legal"]["classification"]  # type: ignore[attr-defined]
    assert m.value == pytest.approx(64 / 87) and round(m.value, 3) == 0.736
    assert m.accuracy == pytest.approx(64 / 87)
    assert m.majority_class == "No" and m.majority_class_rate == pytest.approx(69 / 87)
    assert round(m.majority_class_rate, 3) == 0.793
    # recall No 56/69, recall Yes 8/18
    assert m.balanced_accuracy == pytest.approx((56 / 69 + 8 / 18) / 2)
    # No: p 56/66 r 56/69; Yes: p 8/21 r 8/18
    f1_no = 2 * 56 / (66 + 69)
    f1_yes = 2 * 8 / (21 + 18)
    assert m.macro_f1 == pytest.approx((f1_no + f1_yes) / 2)
    p_e = (69 * 66 + 18 * 21) / 87**2
    assert m.cohen_kappa == pytest.approx((64 / 87 - p_e) / (1 - p_e))
    assert m.accuracy_over_majority == pytest.approx(-5 / 87)
    assert m.beats_majority is False
    for key in ("accuracy", "majority_class_rate", "balanced_accuracy", "macro_f1", "cohen_kappa"):
        low, high = m.intervals[key]
        assert low is not None and high is not None and low <= getattr(m, key) <= high, key
    warning = next(w for w in report.warnings if w.startswith("ft:legal [classification]"))  # type: ignore[attr-defined]
    assert "does not beat always answering 'No'" in warning and "0.793" in warning and "0.736" in warning
    text = report.summary()  # type: ignore[attr-defined]
    assert "vs always 'No' (majority class, 0.793): -0.057" in text and "does NOT beat it" in text
    assert "balanced accuracy 0.628" in text and "kappa 0.241" in text and "macro-F1" in text


def test_a_model_that_clearly_beats_the_majority_class_is_not_flagged() -> None:
    report = _report()
    m = report.metrics["strong"]["classification"]  # type: ignore[attr-defined]
    assert m.accuracy == pytest.approx(85 / 87)
    assert m.beats_majority is True and m.intervals["accuracy_over_majority"][0] > 0
    assert not any(w.startswith("strong [") for w in report.warnings)  # type: ignore[attr-defined]
    assert "beats it" in report.summary()  # type: ignore[attr-defined]


def test_eval_json_metric_details_have_the_contract_keys() -> None:
    out = json.loads(json.dumps(_report().to_json()))  # type: ignore[attr-defined]
    for model in ("ft:legal", "strong"):
        assert isinstance(out["metrics"][model]["classification"], float)
        details = out["metric_details"][model]["classification"]
        for key in ("accuracy", "majority_class_rate", "balanced_accuracy", "macro_f1", "cohen_kappa"):
            assert isinstance(details[key], float), key
            assert len(details["intervals"][key]) == 2
        assert details["accuracy"] == out["metrics"][model]["classification"]
    assert out["metric_details"]["ft:legal"]["classification"]["beats_majority"] is False


def test_non_classification_metrics_keep_their_json_shape() -> None:
    report = run(scripted({"m": ["Yes", "No"]}), yes_no_examples(["Yes", "Yes"]), models="m")
    dumped = report.to_json()["metric_details"]["m"]["exact_match"]
    assert set(dumped) == {"value", "ci_low", "ci_high", "n", "n_unscored", "details"}
    assert not any("majority" in w for w in report.warnings)


def test_chance_scores_by_hand_and_degenerate_cases() -> None:
    # a constant predictor of the majority class: balanced accuracy 1/2, kappa 0, not above the majority
    m = stats.classification_metrics(["No", "No", "No", "Yes"], ["No"] * 4, labels=["Yes", "No"])
    assert m["majority_class"] == "No" and m["majority_class_rate"] == 0.75 and m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.5 and m["cohen_kappa"] == 0.0 and m["beats_majority"] is False
    # every reference and answer the same label: kappa is undefined (None), not a made-up number
    same = stats.classification_metrics(["No"] * 3, ["No"] * 3, labels=["Yes", "No"])
    assert same["cohen_kappa"] is None and same["intervals"]["cohen_kappa"] == [None, None]
    assert same["beats_majority"] is False
    # an answer outside the label set counts against kappa's agreement, like any other miss
    other = stats.classification_metrics(["Yes", "No"], ["Yes", "<other>"], labels=["Yes", "No"])
    assert other["accuracy"] == 0.5 and other["balanced_accuracy"] == 0.5
    assert other["cohen_kappa"] == pytest.approx((0.5 - 0.25) / 0.75)


def test_intervals_are_seeded_and_fast() -> None:
    gold = [i % 3 for i in range(5000)]
    pred = [(i * 7) % 4 for i in range(5000)]
    started = time.monotonic()
    a = stats.classification_scores(gold, pred, n_labels=3, n_matrix=4, majority=0, seed=1)
    assert time.monotonic() - started < 10
    assert a == stats.classification_scores(gold, pred, n_labels=3, n_matrix=4, majority=0, seed=1)
    assert a[1] != stats.classification_scores(gold, pred, n_labels=3, n_matrix=4, majority=0, seed=2)[1]
    assert all(not math.isnan(x) for x in a[0].values() if x is not None)
