"""The statistics of evaluation reports, checked against values computed by hand."""

from __future__ import annotations

import math

import pytest

from finetune_wb.evaluation import stats


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        # n = 6, k = 1: P(X <= 1) = (1 + 6) / 64 -> two-sided 14/64
        (1, 5, 14 / 64),
        (5, 1, 14 / 64),
        # n = 6, k = 0: 2 * 1/64
        (0, 6, 2 / 64),
        # n = 10, k = 2: (1 + 10 + 45) / 1024 * 2 = 112/1024
        (2, 8, 112 / 1024),
        # balanced: the tail is over half the mass, capped at 1
        (3, 3, 1.0),
        (0, 0, 1.0),
        # n = 1: 2 * 1/2 = 1
        (1, 0, 1.0),
    ],
)
def test_mcnemar_exact_matches_hand_computed_binomial_tails(b: int, c: int, expected: float) -> None:
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-12)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_discordant_counts() -> None:
    a = [1, 1, 0, 0, 1, 1]
    b = [1, 0, 1, 0, 0, 1]
    assert stats.discordant_counts(a, b) == (2, 1)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0] * 30 + [0.0] * 20  # mean 0.6, se = sqrt(.24/50) ~ 0.069
    low, high = stats.bootstrap_ci(values, seed=0)
    assert stats.bootstrap_ci(values, seed=0) == (low, high)
    assert low < 0.6 < high
    # the normal-approximation interval is 0.6 +- 0.136; the percentile bootstrap is close to it
    assert low == pytest.approx(0.6 - 1.96 * math.sqrt(0.24 / 50), abs=0.03)
    assert high == pytest.approx(0.6 + 1.96 * math.sqrt(0.24 / 50), abs=0.03)
    continuous = [(i * 0.37) % 1 for i in range(40)]
    assert stats.bootstrap_ci(continuous, seed=1) != stats.bootstrap_ci(continuous, seed=2)


def test_bootstrap_ci_degenerate_cases() -> None:
    assert stats.bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    low, high = stats.bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)


def test_paired_bootstrap_difference_and_p_value() -> None:
    a = [0.9, 0.8, 0.7, 0.95, 0.85, 0.9, 0.75, 0.8, 0.9, 0.88]
    b = [x - 0.2 for x in a]  # every pair differs by exactly 0.2
    diff, low, high, p = stats.paired_bootstrap(a, b)
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.2, 0.2))
    assert p == 0.0

    same = stats.paired_bootstrap(a, a)
    assert same[0] == 0.0 and same[3] == 1.0

    noisy_b = [0.85, 0.9, 0.6, 0.9, 0.9, 0.8, 0.8, 0.7, 0.95, 0.8]
    diff, low, high, p = stats.paired_bootstrap(a, noisy_b, seed=3)
    assert diff == pytest.approx(sum(a) / 10 - sum(noisy_b) / 10)
    assert low < diff < high
    assert 0.05 < p <= 1.0  # a tiny, noisy difference is not significant


def test_paired_bootstrap_requires_pairs() -> None:
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1.0], [1.0, 0.0])


def test_classification_metrics_by_hand() -> None:
    gold = ["yes", "yes", "yes", "no", "no", "maybe"]
    pred = ["yes", "no", "yes", "no", "yes", "<other>"]
    m = stats.classification_metrics(gold, pred, labels=["yes", "no", "maybe"])
    # yes: tp 2, fp 1 (a "no" predicted yes), fn 1 -> p 2/3, r 2/3
    assert m["per_class"]["yes"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["yes"]["recall"] == pytest.approx(2 / 3)
    # no: tp 1, fp 1, fn 1 -> 1/2, 1/2
    assert m["per_class"]["no"]["f1"] == pytest.approx(0.5)
    # maybe: tp 0, fp 0, fn 1 -> 0
    assert m["per_class"]["maybe"]["f1"] == 0.0
    assert m["per_class"]["maybe"]["support"] == 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    # micro: tp 3, fp 2, fn 3 -> p 3/5, r 3/6
    assert m["micro_precision"] == pytest.approx(3 / 5)
    assert m["micro_recall"] == pytest.approx(3 / 6)
    assert m["micro_f1"] == pytest.approx(2 * 0.6 * 0.5 / 1.1)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["matrix_labels"] == ["yes", "no", "maybe", "<other>"]
    assert m["confusion_matrix"] == [
        [2, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
    ]
