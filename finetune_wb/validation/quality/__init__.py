"""Is the training set any good, and safe to upload? Duplicates, leakage, conflicts, labels, secrets.

:func:`check_quality` streams a training file (and optionally its test file) once and returns a
:class:`QualityReport`; :func:`near_duplicate_groups` gives ``split_examples(groups=...)`` the groups that
must stay on one side of a split. ``validate_file(..., quality=True)`` and ``finetune-wb validate
--quality`` run the same checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "QualityFinding": "finetune_wb.validation.quality_report",
    "QualityReport": "finetune_wb.validation.quality_report",
    "check_quality": ".check",
    "mask_text": ".sensitive",
    "near_duplicate_groups": ".groups",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.validation.quality.check import check_quality as check_quality
    from finetune_wb.validation.quality.groups import near_duplicate_groups as near_duplicate_groups
    from finetune_wb.validation.quality.sensitive import mask_text as mask_text
    from finetune_wb.validation.quality_report import (
        QualityFinding as QualityFinding,
        QualityReport as QualityReport,
    )
