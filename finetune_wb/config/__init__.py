"""Run configuration: the :class:`RunConfig` model and reading TOML/YAML config files. Declarative only.

Running a configuration (``run_config``, behind ``finetune-wb run``) belongs to :mod:`finetune_wb.session`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "DataConfig": ".model",
    "EvaluationConfig": ".model",
    "EvaluatorConfig": ".model",
    "RunConfig": ".model",
    "SplitConfig": ".model",
    "TemplateConfig": ".model",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.config.model import (
        DataConfig as DataConfig,
        EvaluationConfig as EvaluationConfig,
        EvaluatorConfig as EvaluatorConfig,
        RunConfig as RunConfig,
        SplitConfig as SplitConfig,
        TemplateConfig as TemplateConfig,
    )
