"""The session's data-quality gate: run before the training file is uploaded, stop on what it must not send.

``fine_tune(spec)`` runs :func:`~finetune_wb.validation.quality.check_quality` on the session's train file
(and its test file, for leakage) before the upload. An error finding (by default: ``leakage``, ``secret``)
stops it with :class:`~finetune_wb.errors.DataQualityError` unless the caller accepts that code
(``accept_quality={"leakage"}``) or asks for warnings only (``quality="warn"``); ``quality="off"`` skips
the check. A test prompt that is only *nearly* a training prompt is a warning here (templated data and
contrastive pairs are common); ``quality_options={"near_leakage_severity": "error"}`` stops on it too. The outcome is kept in the state (``state.quality``), and the report goes to the dataset
artifact (counts in its metadata, a findings table).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from finetune_wb.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.session.context import StepContext
    from finetune_wb.validation.quality_report import QualityReport

logger = logging.getLogger("finetune_wb.session")

QualityMode = Literal["check", "warn", "off"]


def _datasketch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("datasketch") is not None


def quality_step(
    ctx: StepContext,
    *,
    mode: QualityMode = "check",
    accept: Iterable[str] = (),
    options: Mapping[str, Any] | None = None,
    gate: bool = True,
) -> QualityReport | None:
    """Check the session's data; raise DataQualityError for error findings not accepted (when ``gate``)."""
    if mode not in ("check", "warn", "off"):
        raise ConfigError(f"quality must be 'check', 'warn' or 'off', got {mode!r}")
    from finetune_wb.validation.quality.check import check_quality
    from finetune_wb.validation.quality_report import CODES

    accepted = sorted(set(accept))
    unknown = [c for c in accepted if c not in CODES]
    if unknown:
        raise ConfigError(
            f"accept_quality names unknown finding code(s) {unknown}; the codes are {sorted(CODES)}"
        )
    if mode == "off":
        return None
    st = ctx.state
    train = ctx.require_path("train")
    test = ctx.require_path("test") if st.test_path else None
    kwargs = dict(options or {})
    # The session stops on exact leaks; a test prompt that is only nearly a training prompt (templated
    # data, contrastive pairs) is a warning unless the caller says otherwise.
    kwargs.setdefault("near_leakage_severity", "warning")
    if "near_duplicates" not in kwargs and not _datasketch_available():
        logger.warning(
            "near-duplicate and near-leakage checks skipped: install finetune-wb[quality] (datasketch) for them"
        )
        kwargs["near_duplicates"] = False
    report = check_quality(train, test, **kwargs)
    blocking = report.blocking(accepted)
    st.quality = {
        "ok": report.ok,
        "digest": st.train_digest,
        "test_digest": st.test_digest if test is not None else None,
        "counts": dict(report.counts),
        "n_errors": report.n_errors,
        "n_warnings": report.n_warnings,
        "accepted": accepted,
        "mode": mode,
        "blocking": blocking,
    }
    ctx.save()
    logger.info("data quality: %s", report.summary().splitlines()[1].strip())
    if blocking and gate:
        if mode == "check":
            report.raise_for_errors(accept=accepted)
        for finding in report.findings:
            if finding.code in blocking:
                logger.warning("data quality (quality='warn', not stopping): %s", finding)
    return report
