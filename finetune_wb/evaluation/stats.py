"""The statistics behind an evaluation report, small enough to check by hand.

* :func:`bootstrap_ci` — percentile bootstrap confidence interval of a mean (seeded, so reports are stable).
* :func:`mcnemar_exact` — McNemar's exact test for two models scored pass/fail on the same rows: under the
  null hypothesis the discordant rows (one model right, the other wrong) split like fair coin flips, so the
  two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``.
* :func:`paired_bootstrap` — resample rows (the same rows for both models) to get a confidence interval and a
  two-sided p-value for the difference of means of non-binary scores.
* :func:`classification_metrics` — per-class precision/recall/F1, macro and micro averages, confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values``; ``(nan, nan)`` when empty."""
    if not values:
        return float("nan"), float("nan")
    import numpy as np

    data = np.asarray(values, dtype=float)
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(n_resamples, len(data)))
    means = data[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    ``b``: rows the first model got right and the second wrong; ``c``: the reverse. With no discordant rows
    there is no evidence of a difference and the p-value is 1.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def discordant_counts(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """``(b, c)`` for McNemar: rows where only the first passes, rows where only the second passes."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x >= 0.5 > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y >= 0.5 > x)
    return only_a, only_b


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float, float, float]:
    """``(difference, ci_low, ci_high, p_value)`` for ``mean(a) - mean(b)`` over paired rows.

    The p-value is two-sided: twice the share of resampled differences on the far side of zero (capped at
    1); the smallest it can be is about ``2 / n_resamples``.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    if not a:
        nan = float("nan")
        return nan, nan, nan, nan
    import numpy as np

    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    observed = float(diffs.mean())
    if np.all(diffs == diffs[0]):
        return observed, observed, observed, (1.0 if observed == 0 else 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diffs), size=(n_resamples, len(diffs)))
    boot = diffs[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    share_le = float(np.mean(boot <= 0))
    share_ge = float(np.mean(boot >= 0))
    p_value = min(1.0, 2.0 * min(share_le, share_ge))
    return observed, float(low), float(high), p_value


def _safe_div(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _safe_div(2 * precision * recall, precision + recall)


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str], *, labels: Sequence[str], other: str = "<other>"
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro and micro averages and the confusion matrix.

    Rows of ``confusion_matrix`` are the true labels, columns the predicted ones, both in the order of
    ``matrix_labels`` (``labels``, plus ``other`` when some answer matched no label). A prediction outside
    the label set is a miss for its true class and a false positive for none, so micro precision can exceed
    micro recall.
    """
    labels = list(labels)
    extra = sorted({p for p in predicted if p not in labels} | {g for g in gold if g not in labels})
    matrix_labels = labels + [x for x in extra if x != other] + ([other] if other in extra else [])
    index = {label: i for i, label in enumerate(matrix_labels)}
    matrix = [[0] * len(matrix_labels) for _ in matrix_labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1

    per_class: dict[str, dict[str, float]] = {}
    tp_sum = fp_sum = fn_sum = 0
    for label in labels:
        i = index[label]
        tp = matrix[i][i]
        fp = sum(matrix[r][i] for r in range(len(matrix_labels))) - tp
        fn = sum(matrix[i]) - tp
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": float(tp + fn),
        }
        tp_sum, fp_sum, fn_sum = tp_sum + tp, fp_sum + fp, fn_sum + fn
    n_classes = len(labels)
    macro_p = _safe_div(sum(c["precision"] for c in per_class.values()), n_classes)
    macro_r = _safe_div(sum(c["recall"] for c in per_class.values()), n_classes)
    macro_f1 = _safe_div(sum(c["f1"] for c in per_class.values()), n_classes)
    micro_p = _safe_div(tp_sum, tp_sum + fp_sum)
    micro_r = _safe_div(tp_sum, tp_sum + fn_sum)
    return {
        "labels": labels,
        "per_class": per_class,
        "macro_precision": macro_p,
        "macro_recall": macro_r,
        "macro_f1": macro_f1,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _f1(micro_p, micro_r),
        "accuracy": _safe_div(sum(1 for g, p in zip(gold, predicted, strict=True) if g == p), len(gold)),
        "matrix_labels": matrix_labels,
        "confusion_matrix": matrix,
    }
