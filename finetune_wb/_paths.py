"""Where finetune_wb keeps local state that must outlive a process.

Everything lives under one directory: ``$FINETUNE_WB_HOME`` when set, else ``$XDG_CACHE_HOME/finetune_wb``,
else ``~/.cache/finetune_wb``. Tests point ``FINETUNE_WB_HOME`` at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Return (and create) the directory for local registries, sync records and caches."""
    env = os.environ.get("FINETUNE_WB_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        path = Path(base) / "finetune_wb"
    path.mkdir(parents=True, exist_ok=True)
    return path
