"""From the collected sketches to findings: groups of equal digests, MinHash groups, labels, outliers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finetune_wb.validation.quality.extract import digest
from finetune_wb.validation.quality.minhash import components, cross_pairs, similar_pairs
from finetune_wb.validation.quality.sensitive import KINDS, mask_text
from finetune_wb.validation.quality_report import MAX_LINES_PER_FINDING

if TYPE_CHECKING:
    import numpy as np

    from finetune_wb.validation.quality.collect import Collected
    from finetune_wb.validation.quality_report import QualityReport

Emit = Callable[..., None]

EMPTY = digest("")  # the digest of an empty prompt (never a leak or a conflict)


def _groups(keys: np.ndarray, rows: np.ndarray | None = None) -> list[np.ndarray]:
    """Groups (arrays of row positions, ascending) of two or more rows with the same key."""
    import numpy as np

    if rows is None:
        rows = np.arange(len(keys))
    if len(rows) < 2:
        return []
    order = rows[np.argsort(keys[rows], kind="stable")]
    k = keys[order]
    starts = np.concatenate(([0], np.flatnonzero(k[1:] != k[:-1]) + 1))
    ends = np.concatenate((starts[1:], [len(order)]))
    big = np.flatnonzero(ends - starts > 1)
    groups = [np.sort(order[starts[i] : ends[i]]) for i in big.tolist()]
    return sorted(groups, key=lambda g: int(g[0]))


def _listed(lines: list[int]) -> tuple[list[int], str]:
    if len(lines) <= MAX_LINES_PER_FINDING:
        return lines, ""
    return lines[:MAX_LINES_PER_FINDING], f" ({len(lines) - MAX_LINES_PER_FINDING} more lines not listed)"


def _duplicates(data: Collected, lines: np.ndarray, emit: Emit) -> None:
    import numpy as np

    conv = np.frombuffer(data.conv, dtype=np.uint64)
    for g in _groups(conv):
        shown, more = _listed(lines[g].tolist())
        emit(
            "duplicate",
            shown,
            message=f"{len(g)} examples are the same (after lower-casing and collapsing whitespace){more};"
            f" they give this case {len(g)}x the weight: keep one (line {shown[0]}) and drop the others",
        )


def _conflicts(data: Collected, lines: np.ndarray, emit: Emit) -> None:
    import numpy as np

    prompt = np.frombuffer(data.prompt, dtype=np.uint64)
    answer = np.frombuffer(data.answer, dtype=np.uint64)
    has_prompt = np.frombuffer(data.prompt_only, dtype=np.uint64) != np.uint64(EMPTY)
    for g in _groups(prompt, np.flatnonzero(has_prompt)):
        distinct = len(set(answer[g].tolist()))
        if distinct > 1:
            shown, more = _listed(lines[g].tolist())
            emit(
                "conflicting_answers",
                shown,
                message=f"{len(g)} examples have the same prompt but {distinct} different answers{more}; the"
                " model cannot learn both: correct the wrong labels or make the prompts say what differs",
            )


def _near_duplicates(data: Collected, lines: np.ndarray, emit: Emit) -> None:
    import numpy as np

    sketches = data.sketches
    if sketches is None:
        return
    pairs = similar_pairs(sketches)
    roots = components(data.n, pairs)
    groups: dict[int, list[int]] = {}
    for row, root in roots.items():
        groups.setdefault(root, []).append(row)
    prompt = np.frombuffer(data.prompt_only, dtype=np.uint64)
    for _, rows in sorted(groups.items()):
        rows.sort()
        if len({int(prompt[r]) for r in rows}) < 2:
            continue  # all the same prompt: reported as a duplicate or a conflict
        shown, more = _listed(lines[rows].tolist())
        emit(
            "near_duplicate",
            shown,
            message=f"{len(rows)} examples have nearly the same prompt (Jaccard similarity of their word"
            f" 3-shingles >= {sketches.threshold:g}){more}; they over-weight one case: keep the most"
            " representative one, or vary them",
        )


def _leakage(
    train: Collected, test: Collected, lines: np.ndarray, emit: Emit, near_level: str | None
) -> None:
    import numpy as np

    train_prompt = np.frombuffer(train.prompt_only, dtype=np.uint64)
    test_prompt = np.frombuffer(test.prompt_only, dtype=np.uint64)
    test_lines = np.frombuffer(test.lines, dtype=np.uint32)
    matches: dict[int, set[int]] = {}
    exact: set[int] = set()
    if len(train_prompt) and len(test_prompt):
        order = np.argsort(train_prompt, kind="stable")
        sorted_prompts = train_prompt[order]
        lo = np.searchsorted(sorted_prompts, test_prompt, side="left")
        hi = np.searchsorted(sorted_prompts, test_prompt, side="right")
        for t in np.flatnonzero((hi > lo) & (test_prompt != np.uint64(EMPTY))).tolist():
            matches.setdefault(t, set()).update(order[lo[t] : hi[t]].tolist())
            exact.add(t)
    if train.sketches is not None and test.sketches is not None:
        for t, r in cross_pairs(test.sketches, train.sketches):
            matches.setdefault(t, set()).add(r)
    for t in sorted(matches):
        rows = sorted(matches[t])
        shown, more = _listed(lines[rows].tolist())
        how = "the same prompt as" if t in exact else "nearly the same prompt as"
        if t not in exact and near_level == "off":
            continue
        emit(
            "leakage",
            shown,
            level=None if t in exact else near_level,
            test_lines=[int(test_lines[t])],
            message=f"test line {int(test_lines[t])} has {how} training {('line ' if len(rows) == 1 else 'lines ')}"
            f"{', '.join(map(str, shown[:5]))}{' ...' if len(shown) > 5 else ''}{more}; the evaluation would"
            " measure memory, not skill: remove it from the test set (or the training set), or split with"
            " groups=near_duplicate_groups(...)",
        )


def _labels(train: Collected, test: Collected | None, max_share: float, emit: Emit) -> dict[str, int] | None:
    labels = train.labels
    if not labels or train.n < 2 or len(labels) > train.n / 2:
        return None  # answers are not labels (too many distinct, too long, or each one unique)
    ordered = dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])))
    masked = {mask_text(k) or "<empty>": v for k, v in ordered.items()}
    top, count = next(iter(ordered.items()))
    share = count / train.n
    if share > max_share:
        emit(
            "label_imbalance",
            [],
            message=f"the label {mask_text(top)!r} is {share:.0%} of the training examples ({count} of"
            f" {train.n}; threshold {max_share:.0%}); the model may learn to answer it always: add examples"
            " of the other labels or down-sample this one",
        )
    if test is not None and test.labels is not None:
        for label, _n in sorted(test.labels.items()):
            if label not in labels:
                emit(
                    "unseen_label",
                    [],
                    test_lines=[test.label_lines[label]],
                    message=f"the test label {mask_text(label)!r} (first at test line {test.label_lines[label]})"
                    " is not an answer of any training example; the model cannot learn it: add training"
                    " examples with this label",
                )
    return masked


def _outliers(data: Collected, lines: np.ndarray, factor: float, emit: Emit) -> None:
    import numpy as np

    if data.n < 20:
        return
    lengths = np.frombuffer(data.answer_len, dtype=np.uint32).astype(np.float64)
    median = float(np.median(lengths))
    long_rows = np.flatnonzero((lengths >= factor * max(median, 1)) & (lengths - median >= 50))
    short_rows = np.flatnonzero((lengths * factor <= median) & (median - lengths >= 50))
    for rows, what, fix in (
        (
            long_rows,
            f"longer than {factor:g}x",
            "check them for pasted logs or merged answers, or split them",
        ),
        (short_rows, f"shorter than 1/{factor:g} of", "check them for truncated or empty answers"),
    ):
        if len(rows):
            shown, more = _listed(lines[rows].tolist())
            emit(
                "answer_length_outlier",
                shown,
                message=f"{len(rows)} answers are {what} the median answer ({median:g} characters){more}: {fix}",
            )


def _system_prompts(data: Collected, share_limit: float, emit: Emit) -> None:
    systems = data.systems
    if not systems or len(systems) < 2:
        return
    ordered = sorted(systems.values(), key=lambda e: -e[0])
    count, first_lines = ordered[0]
    share = count / max(data.n, 1)
    if share > share_limit:
        rare = sorted(line for _, ls in ordered[1:] for line in ls)
        shown, more = _listed(rare)
        emit(
            "dominant_system_prompt",
            shown,
            message=f"one system prompt (first at line {first_lines[0]}) is in {share:.0%} of the examples;"
            f" the {len(ordered) - 1} other variant(s) (listed lines) are too rare to be learnt{more}: give"
            " each variant enough examples, or use one system prompt",
        )


def _sensitive(data: Collected, emit: Emit, *, test: bool = False) -> None:
    """One finding per line with a hit; in the test file the codes are ``test_secret`` and
    ``test_personal_data`` and the line is in ``test_lines``."""
    prefix = "test_" if test else ""
    where = " of the test file" if test else ""
    for line, code, hits in data.hits:
        parts = sorted({f"{KINDS[h.kind][1]} ({h.masked}) in message {index}" for index, h in hits})
        if test:
            fix = (
                "remove or replace it: evaluation sends the test prompts to the models and logs them to W&B"
                + (" (rotate a real key)" if code == "secret" else "")
            )
        elif code == "secret":
            fix = (
                "remove or replace it before uploading: it would be sent to the provider and can be learnt by"
                " the model (rotate a real key)"
            )
        else:
            fix = "remove or pseudonymise it unless you may share it with the provider"
        message = f"{'; '.join(parts)}{where}: {fix}"
        if test:
            emit(prefix + code, [], test_lines=[line], message=message)
        else:
            emit(code, [line], message=message)
    for code, n in data.hit_counts.items():
        listed = sum(1 for _, c, _ in data.hits if c == code)
        if n > listed:
            emit(prefix + code, [], omitted=n - listed)


def build_report(
    train: Collected,
    test: Collected | None,
    *,
    path: str | None,
    test_path: str | None,
    levels: dict[str, str],
    max_label_share: float,
    outlier_factor: float,
    dominant_system_share: float,
    max_findings: int,
    options: dict[str, Any],
    near_leakage_severity: str | None = None,
) -> QualityReport:
    import numpy as np

    from finetune_wb.validation.quality_report import QualityFinding, QualityReport

    findings: list[QualityFinding] = []
    counts: dict[str, int] = {}
    tally = {"error": 0, "warning": 0, "omitted": 0}

    def emit(
        code: str,
        lines: list[int],
        *,
        message: str = "",
        test_lines: list[int] | None = None,
        omitted: int = 0,
        level: str | None = None,
    ) -> None:
        level = level or levels.get(code, "warning")
        if level == "off":
            return
        n = omitted or 1
        counts[code] = counts.get(code, 0) + n
        tally[level] += n
        if omitted:
            tally["omitted"] += omitted
            return
        if len(findings) >= max_findings:
            tally["omitted"] += 1
            return
        findings.append(
            QualityFinding(
                code=code,
                severity=level,  # type: ignore[arg-type]
                lines=[int(x) for x in lines],
                test_lines=[int(x) for x in (test_lines or [])],
                message=message,
            )
        )

    lines = np.frombuffer(train.lines, dtype=np.uint32).astype(np.int64)
    if levels["secret"] != "off" or levels["personal_data"] != "off":
        _sensitive(train, emit)
    if test is not None and (levels["test_secret"] != "off" or levels["test_personal_data"] != "off"):
        _sensitive(test, emit, test=True)
    if test is not None and levels["leakage"] != "off":
        _leakage(train, test, lines, emit, near_leakage_severity)
    if levels["duplicate"] != "off":
        _duplicates(train, lines, emit)
    if levels["conflicting_answers"] != "off":
        _conflicts(train, lines, emit)
    if levels["near_duplicate"] != "off":
        _near_duplicates(train, lines, emit)
    labels = _labels(train, test, max_label_share, emit)
    _outliers(train, lines, outlier_factor, emit)
    _system_prompts(train, dominant_system_share, emit)
    return QualityReport(
        path=path,
        test_path=test_path,
        n_examples=train.n,
        n_test_examples=test.n if test is not None else 0,
        findings=findings,
        counts=counts,
        n_errors=tally["error"],
        n_warnings=tally["warning"],
        n_findings_omitted=tally["omitted"],
        labels=labels,
        options=options,
    )
