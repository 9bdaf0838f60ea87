"""The whole chain in one object: :class:`FineTuneSession`, its steps, its state file and its W&B runs.

The facade (:mod:`.facade`) owns the state; each step (:mod:`.job_step`, :mod:`.eval_step`) takes an explicit
context. :func:`run_config` runs a :class:`~finetune_wb.config.RunConfig` through a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "FineTuneSession": ".facade",
    "RunResult": ".run_config",
    "SessionState": ".state",
    "run_config": ".run_config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.session.facade import FineTuneSession as FineTuneSession
    from finetune_wb.session.run_config import RunResult as RunResult, run_config as run_config
    from finetune_wb.session.state import SessionState as SessionState
