"""The statistics of a migration report, checked by hand."""

from __future__ import annotations

import math

import pytest

from finetune_wb.migration.scores import (
    binomial_cdf,
    mcnemar,
    normalise,
    percentile,
    same_answer,
    tolerance_p_value,
    wilson_interval,
)


def test_wilson_interval_known_values_and_edges() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    low, high = wilson_interval(30, 30)
    assert high == 1.0 and low == pytest.approx(0.8865, abs=1e-3)  # not a point at 100 %
    assert wilson_interval(0, 0) == (None, None)


def test_binomial_cdf_matches_the_sum_of_terms() -> None:
    n, p = 20, 0.9
    exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(18 + 1))
    assert binomial_cdf(18, n, p) == pytest.approx(exact, rel=1e-9)
    assert binomial_cdf(20, 20, 0.9) == 1.0 and binomial_cdf(-1, 20, 0.9) == 0.0
    assert binomial_cdf(4999, 5000, 1.0) == 0.0 and binomial_cdf(0, 10, 0.0) == 1.0
    assert 0 < binomial_cdf(4850, 5000, 0.98) < 1e-5  # large n stays finite


def test_tolerance_test_rejects_only_clear_shortfalls() -> None:
    assert tolerance_p_value(30, 30, 0.02) == 1.0
    assert tolerance_p_value(29, 30, 0.02) > 0.05  # one miss in 30: not evidence of > 2 points lost
    assert tolerance_p_value(20, 30, 0.02) < 1e-6
    assert tolerance_p_value(4850, 5000, 0.02) < 0.05  # 97 % of 5,000 is significantly below 98 %
    assert tolerance_p_value(29, 30, 0.0) == 0.0  # zero tolerance: any disagreement rejects
    assert tolerance_p_value(0, 0, 0.02) is None


def test_mcnemar_counts_discordant_rows() -> None:
    p, only_a, only_b = mcnemar([True, True, True, False], [True, False, False, False])
    assert (only_a, only_b) == (2, 0) and p == 0.5
    assert mcnemar([True], [True])[0] == 1.0


def test_answers_compare_like_exact_match_and_percentiles_interpolate() -> None:
    assert normalise("  Yes. ") == "yes" and same_answer("No!", "no") and not same_answer(None, "no")
    assert percentile([10, 20, 30, 40], 50) == 25 and percentile([5], 95) == 5 and percentile([], 50) is None


def test_replacement_models_are_priced_exactly_and_point_releases_are_not_guessed() -> None:
    from finetune_wb.evaluation.pricing import price_per_million

    assert price_per_million("gpt-5-mini") == (0.25, 2.00)
    assert price_per_million("gpt-5-mini-2025-08-07") == (0.25, 2.00)
    assert price_per_million("gpt-5") == (1.25, 10.00) and price_per_million("gpt-5-nano") == (0.05, 0.40)
    assert price_per_million("gpt-5.4-mini") is None  # priced differently: pass prices= rather than a guess
    assert price_per_million("gpt-5-mini", {"gpt-5-mini": (1.0, 3.0)}) == (1.0, 3.0)
    assert price_per_million("gpt-4o-mini") == (0.15, 0.60)  # the existing table is unchanged
