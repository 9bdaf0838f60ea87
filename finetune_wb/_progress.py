"""A small progress-bar helper shared by the modules that wait or transfer.

``tqdm.auto`` picks the widget bar inside Jupyter and the text bar in a terminal, so notebooks get a proper
bar without callers caring where they run. The import is deferred so ``import finetune_wb`` stays light.
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(
    total: float | None = None,
    *,
    desc: str | None = None,
    disable: bool = False,
    unit: str = "it",
    unit_scale: bool = False,
    leave: bool = True,
    **kwargs: Any,
) -> Any:
    """Return a ``tqdm.auto.tqdm`` bar writing to stderr (stdout stays clean for ``--json`` output).

    ``disable=True`` gives a bar whose ``update``/``set_postfix``/``close`` are no-ops, so callers never need
    to branch on whether progress is shown.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(
        total=total,
        desc=desc,
        disable=disable,
        unit=unit,
        unit_scale=unit_scale,
        leave=leave,
        **kwargs,
    )
