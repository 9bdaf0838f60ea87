"""The whole chain in one object: :class:`FineTuneSession`, its steps, its state file and its W&B runs.

The facade (:mod:`.facade`) owns a :class:`~.context.StepContext` (state, state file, client, W&B runs,
settings) and holds a lock while each step works on it: :mod:`.data_step` (prepare, use_files, validate),
:mod:`.job_step` (upload, create, wait), :mod:`.eval_step`. No step imports the facade. :mod:`.state` is the
state file, :mod:`.runs` the session's W&B runs. :func:`run_config` runs a
:class:`~finetune_wb.config.RunConfig` through a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "FineTuneSession": ".facade",
    "RunResult": ".config_runner",
    "SessionState": ".state",
    "run_config": ".config_runner",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.session.config_runner import RunResult as RunResult, run_config as run_config
    from finetune_wb.session.facade import FineTuneSession as FineTuneSession
    from finetune_wb.session.state import SessionState as SessionState
