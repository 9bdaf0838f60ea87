"""``check_quality``: is this training set any good, and is it safe to upload?

One streaming pass over the training file (and one over the test file) collects sketches
(:mod:`.collect`); the findings are then computed from those arrays (:mod:`.findings`).
:class:`QualityPass` is that pass fed one example at a time, which lets the validator share its own read of
the file. Finding codes (default severity): ``duplicate``, ``near_duplicate``, ``conflicting_answers``,
``label_imbalance``, ``unseen_label``, ``personal_data``, ``answer_length_outlier``,
``dominant_system_prompt``, ``test_secret``, ``test_personal_data`` (warnings: the test file is not
uploaded for training; ``severity={"test_secret": "error"}`` stops on it); ``leakage``, ``secret``
(errors). ``severity={"personal_data": "error", "near_duplicate": "off"}`` changes
them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError
from finetune_wb.validation.quality.collect import Collected
from finetune_wb.validation.quality.extract import iter_examples
from finetune_wb.validation.quality.minhash import Sketches
from finetune_wb.validation.quality.sensitive import DEFAULT_ALLOW, KINDS, Scanner
from finetune_wb.validation.reader import NotText

if TYPE_CHECKING:
    from finetune_wb.validation.quality_report import QualityReport

DEFAULT_THRESHOLD = 0.8
MAX_FINDINGS = 1000


def _check_options(
    threshold: float, max_label_share: float, dominant_system_share: float, outlier_factor: float
) -> None:
    for name, value, low, high in (
        ("near_duplicate_threshold", threshold, 0.0, 1.0),
        ("max_label_share", max_label_share, 0.0, 1.0),
        ("dominant_system_share", dominant_system_share, 0.0, 1.0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
            raise ConfigError(f"{name} must be a number above {low} and at most {high}, got {value!r}")
    if (
        isinstance(outlier_factor, bool)
        or not isinstance(outlier_factor, (int, float))
        or not (math.isfinite(outlier_factor) and outlier_factor > 1)
    ):
        raise ConfigError(f"outlier_factor must be a number above 1, got {outlier_factor!r}")


def _severities(severity: Mapping[str, str] | None) -> dict[str, str]:
    from finetune_wb.validation.quality_report import CODES, DEFAULT_SEVERITY

    out: dict[str, str] = {code: DEFAULT_SEVERITY.get(code, "warning") for code in CODES}
    for code, value in (severity or {}).items():
        if code not in CODES:
            raise ConfigError(f"severity names unknown finding code {code!r}; the codes are {sorted(CODES)}")
        if value not in ("error", "warning", "off"):
            raise ConfigError(f"severity[{code!r}] must be 'error', 'warning' or 'off', got {value!r}")
        out[code] = value
    return out


def _read_error(source: Any, exc: BaseException) -> ConfigError:
    what = (
        "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read as UTF-8 JSONL ({exc})"
    )
    return ConfigError(f"{source} {what}; check the path")


class QualityPass:
    """The quality checks of one training set, fed one parsed example at a time.

    :func:`check_quality` feeds it from its own read of the file; ``validate_file(..., quality=True)`` feeds
    it from the validator's read, so the file is read and parsed once. The options are
    :func:`check_quality`'s and are checked here (ConfigError), before any example is read.
    """

    def __init__(
        self,
        test: str | os.PathLike[str] | Iterable[Any] | None = None,
        *,
        near_duplicates: bool = True,
        near_duplicate_threshold: float = DEFAULT_THRESHOLD,
        max_label_share: float = 0.8,
        max_labels: int = 20,
        outlier_factor: float = 5.0,
        dominant_system_share: float = 0.9,
        allow: Iterable[str] = (),
        severity: Mapping[str, str] | None = None,
        near_leakage_severity: str | None = None,
        max_findings: int = MAX_FINDINGS,
    ) -> None:
        _check_options(near_duplicate_threshold, max_label_share, dominant_system_share, outlier_factor)
        if isinstance(max_findings, bool) or not isinstance(max_findings, int) or max_findings < 0:
            raise ConfigError(f"max_findings must be an integer >= 0, got {max_findings!r}")
        levels = _severities(severity)
        if near_leakage_severity not in (None, "error", "warning", "off"):
            raise ConfigError(
                "near_leakage_severity must be 'error', 'warning', 'off' or None,"
                f" got {near_leakage_severity!r}"
            )
        allow = list(allow)
        for pattern in allow:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ConfigError(f"allow pattern {pattern!r} is not a regular expression: {exc}") from exc
        if isinstance(test, (str, os.PathLike)) and not os.path.exists(test):
            raise ConfigError(f"test file {test} does not exist; check the path")
        self.test = test
        self.levels = levels
        self.scanner = self._scanner(levels, allow, test=False)
        self.test_scanner = self._scanner(levels, allow, test=True) if test is not None else None
        self.near = near_duplicates and (
            levels["near_duplicate"] != "off" or (test is not None and levels["leakage"] != "off")
        )
        self.threshold = near_duplicate_threshold
        self.max_labels = max_labels
        self.max_findings = max_findings
        self.max_label_share = max_label_share
        self.outlier_factor = outlier_factor
        self.dominant_system_share = dominant_system_share
        self.near_leakage_severity = near_leakage_severity
        self.allow = allow
        # Built last: computing the MinHash parameters is the one step that may need datasketch.
        self.train = self._collector(self.scanner)

    @staticmethod
    def _scanner(levels: dict[str, str], allow: list[str], *, test: bool) -> Scanner | None:
        prefix = "test_" if test else ""
        kinds = [k for k, (code, _) in KINDS.items() if levels[prefix + code] != "off"]
        return Scanner([*DEFAULT_ALLOW, *allow], kinds=kinds) if kinds else None

    def _collector(self, scanner: Scanner | None) -> Collected:
        return Collected(
            sketches=Sketches(self.threshold) if self.near else None,
            scanner=scanner,
            max_labels=self.max_labels,
            max_label_length=40,
            max_hits=self.max_findings,
        )

    def add(self, line: int, obj: Any) -> None:
        """One parsed training example (a JSON object) at its 1-based line."""
        self.train.add(line, obj)

    def feed(self, source: Any) -> QualityPass:
        """Every example of ``source`` (a JSONL path or examples in memory)."""
        try:
            for line, obj in iter_examples(source):
                self.train.add(line, obj)
        except (OSError, NotText) as exc:
            raise _read_error(source, exc) from exc
        return self

    def report(self, train_path: str | os.PathLike[str] | None = None) -> QualityReport:
        """The findings, once every training example was added (reads the test file, if any)."""
        train_data = self.train.finish()
        test_data = None
        try:
            if self.test is not None:
                test_data = self._collector(self.test_scanner)
                try:
                    test_data.feed(iter_examples(self.test))
                except (OSError, NotText) as exc:
                    raise _read_error(self.test, exc) from exc
            return self._build(train_data, test_data, train_path)
        finally:
            for data in (train_data, test_data):
                if data is not None and data.sketches is not None:
                    data.sketches.close()

    def _build(
        self, train_data: Collected, test_data: Collected | None, train_path: str | os.PathLike[str] | None
    ) -> QualityReport:
        from finetune_wb.validation.quality.findings import build_report

        test = self.test
        return build_report(
            train_data,
            test_data,
            path=str(train_path) if train_path is not None else None,
            test_path=str(test) if isinstance(test, (str, os.PathLike)) else None,
            levels=self.levels,
            max_label_share=self.max_label_share,
            outlier_factor=self.outlier_factor,
            dominant_system_share=self.dominant_system_share,
            max_findings=self.max_findings,
            near_leakage_severity=self.near_leakage_severity,
            options={
                "near_duplicates": self.near,
                "near_duplicate_threshold": self.threshold,
                "max_label_share": self.max_label_share,
                "max_labels": self.max_labels,
                "outlier_factor": self.outlier_factor,
                "dominant_system_share": self.dominant_system_share,
                "allow": self.allow,
                "severity": {c: s for c, s in self.levels.items() if s != "warning"},
                "near_leakage_severity": self.near_leakage_severity or self.levels["leakage"],
            },
        )


def check_quality(
    train: str | os.PathLike[str] | Iterable[Any],
    test: str | os.PathLike[str] | Iterable[Any] | None = None,
    *,
    near_duplicates: bool = True,
    near_duplicate_threshold: float = DEFAULT_THRESHOLD,
    max_label_share: float = 0.8,
    max_labels: int = 20,
    outlier_factor: float = 5.0,
    dominant_system_share: float = 0.9,
    allow: Iterable[str] = (),
    severity: Mapping[str, str] | None = None,
    near_leakage_severity: str | None = None,
    max_findings: int = MAX_FINDINGS,
) -> QualityReport:
    """Check a training set (a JSONL path or examples) and optionally its test set; never raises on data.

    ``near_duplicate_threshold``: Jaccard similarity of the prompts' word 3-shingle sets from which
    two examples count as near duplicates (and a test prompt as leaked). ``max_label_share``: when the
    answers look like labels (at most ``max_labels`` distinct short answers), a label holding more than
    this share of the examples is ``label_imbalance``. ``outlier_factor``: answers this many times longer
    (or shorter) than the median answer are outliers. ``dominant_system_share``: with several system
    prompt variants, one in more than this share of the examples is reported. ``allow``: regular
    expressions; a secret or personal datum whose text matches one is not reported (added to the default
    allow-list of documentation domains such as ``example.com``). ``severity``: per code "error",
    "warning" or "off". ``near_leakage_severity`` gives a test prompt that is only *nearly* a training
    prompt its own severity (default: that of ``leakage``). ``near_duplicates=False`` skips the MinHash
    checks (and the datasketch extra).

    Raises ConfigError for bad options, or when near-duplicate checks are asked for and datasketch is not
    installed.
    """
    quality = QualityPass(
        test,
        near_duplicates=near_duplicates,
        near_duplicate_threshold=near_duplicate_threshold,
        max_label_share=max_label_share,
        max_labels=max_labels,
        outlier_factor=outlier_factor,
        dominant_system_share=dominant_system_share,
        allow=allow,
        severity=severity,
        near_leakage_severity=near_leakage_severity,
        max_findings=max_findings,
    )
    quality.feed(train)
    return quality.report(train if isinstance(train, (str, os.PathLike)) else None)
