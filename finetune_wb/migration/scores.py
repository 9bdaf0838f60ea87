"""The numbers of a migration report: agreement and accuracy with intervals, paired tests, latency, cost.

* Agreement: the share of golden prompts where the candidate gives the fine-tune's answer (compared as
  ``exact_match`` compares: case, whitespace and trailing punctuation ignored), with a 95 % Wilson interval.
* Tolerance: a candidate is *within tolerance* unless its agreement is significantly below
  ``1 - tolerance``: the one-sided exact binomial test of "agreement >= 1 - tolerance" gives
  ``agreement_p_value``; below ``1 - confidence`` (0.05) it is rejected.
* ``p_value``: McNemar's exact paired test of the candidate against the fine-tune (from
  :mod:`finetune_wb.evaluation.stats`): on accuracy against the references when the golden set has them,
  else on agreement (the fine-tune always agrees with itself, so every disagreement counts against the
  candidate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_TRAILING = ".!?;:, \t\n"


def normalise(text: str) -> str:
    """What :func:`~finetune_wb.evaluation.exact_match` compares: stripped, single-spaced, case-folded."""
    return " ".join(text.split()).rstrip(_TRAILING).casefold()


def same_answer(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and normalise(a) == normalise(b)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion (honest at 0 % and 100 %, unlike a bootstrap)."""
    if n <= 0:
        return None, None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (fine for n in the tens of thousands)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def tolerance_p_value(agreed: int, n: int, tolerance: float) -> float | None:
    """One-sided p-value of "agreement >= 1 - tolerance" given ``agreed`` of ``n`` (None when n == 0)."""
    if n <= 0:
        return None
    return binomial_cdf(agreed, n, 1.0 - tolerance)


def mcnemar(first: Sequence[bool], second: Sequence[bool]) -> tuple[float, int, int]:
    """(p-value, rows only ``first`` passed, rows only ``second`` passed), paired over rows."""
    from finetune_wb.evaluation.stats import discordant_counts, mcnemar_exact

    a = [1.0 if x else 0.0 for x in first]
    b = [1.0 if x else 0.0 for x in second]
    only_first, only_second = discordant_counts(a, b)
    return mcnemar_exact(only_first, only_second), only_first, only_second


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation); None without values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)
