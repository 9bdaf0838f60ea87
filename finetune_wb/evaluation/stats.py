"""The statistics behind an evaluation report, small enough to check by hand.

* :func:`bootstrap_ci` — percentile bootstrap confidence interval of a mean (seeded, so reports are stable).
* :func:`mcnemar_exact` — McNemar's exact test for two models scored pass/fail on the same rows: under the
  null hypothesis the discordant rows (one model right, the other wrong) split like fair coin flips, so the
  two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``.
* :func:`paired_bootstrap` — resample rows (the same rows for both models) to get a confidence interval and a
  two-sided p-value for the difference of means of non-binary scores.
* :func:`classification_metrics` — per-class precision/recall/F1, macro and micro averages, confusion matrix,
  and the chance-aware scores (majority-class rate, balanced accuracy, Cohen's kappa) with bootstrap intervals
  (:func:`classification_scores`, vectorised over resamples).
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
    gold: Sequence[str],
    predicted: Sequence[str],
    *,
    labels: Sequence[str],
    other: str = "<other>",
    seed: int = DEFAULT_SEED,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro and micro averages, the confusion matrix, and what the
    accuracy must beat.

    The chance-aware scores: ``majority_class`` (the most frequent reference label, ties to the first in
    ``matrix_labels``) and ``majority_class_rate`` (the accuracy of always answering it),
    ``balanced_accuracy`` (mean recall over the classes present in ``gold``), ``cohen_kappa`` (agreement
    beyond chance; None when undefined), ``accuracy_over_majority`` (accuracy - majority rate), each with a
    95 % percentile-bootstrap interval in ``intervals`` (``name -> [low, high]``, seeded). ``beats_majority``
    is True only when the interval of ``accuracy_over_majority`` lies above 0 (a paired bootstrap over rows).

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
    support = [sum(row) for row in matrix]
    majority = max(range(len(matrix_labels)), key=lambda i: (support[i], -i)) if gold else 0
    point, intervals = classification_scores(
        [index[g] for g in gold],
        [index[p] for p in predicted],
        n_labels=len(labels),
        n_matrix=len(matrix_labels),
        majority=majority,
        n_resamples=n_resamples,
        seed=seed,
    )
    over = intervals.get("accuracy_over_majority", [None, None])
    chance = {
        "majority_class": matrix_labels[majority] if gold else None,
        "majority_class_rate": point.get("majority_class_rate"),
        "balanced_accuracy": point.get("balanced_accuracy"),
        "cohen_kappa": point.get("cohen_kappa"),
        "accuracy_over_majority": point.get("accuracy_over_majority"),
        "beats_majority": bool(gold) and over[0] is not None and over[0] > 0,
        "intervals": intervals,
    }
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
        **chance,
    }


def _quantiles(samples: Any, confidence: float) -> list[float | None]:
    import numpy as np

    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return [None, None]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return [float(low), float(high)]


def _scores_from_confusion(counts: Any, n_labels: int, majority: int) -> dict[str, Any]:
    """Accuracy, majority rate, balanced accuracy, macro-F1 and kappa for a stack of confusion matrices.

    ``counts`` has shape ``(b, M, M)`` (true x predicted); the first ``n_labels`` indices are the label set.
    """
    import numpy as np

    n = counts.sum(axis=(1, 2)).astype(float)
    diag = np.diagonal(counts, axis1=1, axis2=2).astype(float)
    rows = counts.sum(axis=2).astype(float)  # true counts
    cols = counts.sum(axis=1).astype(float)  # predicted counts
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = diag.sum(axis=1) / n
        majority_rate = rows[:, majority] / n
        recall = np.where(rows > 0, diag / np.where(rows > 0, rows, 1), np.nan)
        balanced = np.nanmean(np.where(rows > 0, recall, np.nan), axis=1)
        k = slice(0, n_labels)
        prec = np.where(cols[:, k] > 0, diag[:, k] / np.where(cols[:, k] > 0, cols[:, k], 1), 0.0)
        rec = np.where(rows[:, k] > 0, diag[:, k] / np.where(rows[:, k] > 0, rows[:, k], 1), 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0.0)
        macro_f1 = f1.mean(axis=1) if n_labels else np.zeros(len(n))
        expected = (rows * cols).sum(axis=1) / (n * n)
        kappa = np.where(
            expected < 1, (accuracy - expected) / np.where(expected < 1, 1 - expected, 1), np.nan
        )
    return {
        "accuracy": accuracy,
        "majority_class_rate": majority_rate,
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "cohen_kappa": kappa,
        "accuracy_over_majority": accuracy - majority_rate,
    }


def classification_scores(
    gold_index: Sequence[int],
    predicted_index: Sequence[int],
    *,
    n_labels: int,
    n_matrix: int,
    majority: int,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[dict[str, float | None], dict[str, list[float | None]]]:
    """Point estimates and percentile-bootstrap intervals of the chance-aware classification scores.

    Rows are resampled (seeded, vectorised, the same resamples for every score), so the interval of
    ``accuracy_over_majority`` is a paired one: accuracy minus the rate of the fixed ``majority`` class.
    """
    import numpy as np

    gold = np.asarray(gold_index, dtype=np.int64)
    pred = np.asarray(predicted_index, dtype=np.int64)
    n = len(gold)
    if n == 0:
        return {}, {}
    cells = n_matrix * n_matrix

    def confusion(g: Any, p: Any) -> Any:
        b = g.shape[0]
        flat = (np.arange(b)[:, None] * cells + g * n_matrix + p).ravel()
        return np.bincount(flat, minlength=b * cells).reshape(b, n_matrix, n_matrix)

    def nan_to_none(x: float) -> float | None:
        return None if math.isnan(x) else x

    point = {
        k: nan_to_none(float(v[0]))
        for k, v in _scores_from_confusion(
            confusion(gold[None, :], pred[None, :]), n_labels, majority
        ).items()
    }
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    parts: dict[str, list[Any]] = {}
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        for k, v in _scores_from_confusion(confusion(gold[idx], pred[idx]), n_labels, majority).items():
            parts.setdefault(k, []).append(v)
        done += b
    intervals = {k: _quantiles(np.concatenate(v), confidence) for k, v in parts.items()}
    return point, intervals
