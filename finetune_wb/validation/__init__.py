"""Will the provider accept this training file, and what will it cost? Format checks by line, tokens, epochs, USD.

:func:`validate_file` streams the file (memory flat in its size); :func:`validate_examples` takes models in
memory. Both return a :class:`ValidationReport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "QualityFinding": ".quality_report",
    "QualityReport": ".quality_report",
    "ValidationIssue": ".report",
    "ValidationReport": ".report",
    "check_quality": ".quality.check",
    "count_example_tokens": ".tokens",
    "default_epochs": ".costs",
    "encoding_name_for_model": ".tokens",
    "estimate_cost_usd": ".costs",
    "near_duplicate_groups": ".quality.groups",
    "validate_examples": ".validate",
    "validate_file": ".validate",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.validation.costs import (
        default_epochs as default_epochs,
        estimate_cost_usd as estimate_cost_usd,
    )
    from finetune_wb.validation.quality.check import check_quality as check_quality
    from finetune_wb.validation.quality.groups import near_duplicate_groups as near_duplicate_groups
    from finetune_wb.validation.quality_report import (
        QualityFinding as QualityFinding,
        QualityReport as QualityReport,
    )
    from finetune_wb.validation.report import (
        ValidationIssue as ValidationIssue,
        ValidationReport as ValidationReport,
    )
    from finetune_wb.validation.tokens import (
        count_example_tokens as count_example_tokens,
        encoding_name_for_model as encoding_name_for_model,
    )
    from finetune_wb.validation.validate import (
        validate_examples as validate_examples,
        validate_file as validate_file,
    )
