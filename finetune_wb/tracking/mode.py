"""Which W&B mode is in force (online, offline, disabled), starting the runs finetune_wb owns in it, where
a run is written, and the one-time hint about uploading offline runs.

Nothing here imports wandb at module level; functions that need it import it when called.
"""

from __future__ import annotations

import contextvars
import logging
import netrc
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from finetune_wb._secrets import scrub
from finetune_wb.errors import TrackingError

logger = logging.getLogger("finetune_wb.tracking")


_OFFLINE_MODES = {"offline", "dryrun", "disabled"}


_hint_lock = threading.Lock()


_hint_given = False


def _logged_in() -> bool:
    """True if W&B credentials are available without asking anyone (env var or netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(Path.home(), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def is_offline(run: Any = None) -> bool:
    """Whether W&B cannot reach its server: the run's mode when a run is given, else the environment.

    Without a run: ``WANDB_MODE`` offline/dryrun/disabled, or no W&B credentials (no ``WANDB_API_KEY``, no
    netrc entry) both count as offline, so a process never prompts for a login.
    """
    if run is not None:
        settings = getattr(run, "settings", None)
        mode = str(getattr(settings, "mode", "") or "")
        if mode in _OFFLINE_MODES or getattr(run, "disabled", False):
            return True
        offline = getattr(run, "offline", None)
        if isinstance(offline, bool):
            return offline
        return mode != "online" and mode != "run"
    mode = (os.environ.get("WANDB_MODE") or "").strip().lower()
    if mode in _OFFLINE_MODES:
        return True
    return not _logged_in()


def is_disabled(run: Any = None) -> bool:
    """W&B switched off (``WANDB_MODE=disabled`` or a disabled run): runs log nothing anywhere."""
    if run is not None:
        settings = getattr(run, "settings", None)
        return bool(getattr(run, "disabled", False)) or str(getattr(settings, "mode", "")) == "disabled"
    return (os.environ.get("WANDB_MODE") or "").strip().lower() == "disabled"


def init_mode() -> str | None:
    """The ``mode`` for ``wandb.init`` in runs we start: kept "disabled", "offline" when offline, else None."""
    if is_disabled():
        return "disabled"
    return "offline" if is_offline() else None


def start_run(
    *,
    project: str,
    job_type: str,
    entity: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: list[str] | None = None,
    dir: str | None = None,
    what: str = "a run",
) -> Any:
    """``wandb.init`` for the runs finetune_wb starts: offline when W&B is, never touching other runs.

    ``reinit="create_new"`` leaves any run the caller has open alone (and does not make ours the global
    ``wandb.run``); without credentials the run is offline instead of prompting for a login.
    """
    import wandb

    try:
        return wandb.init(
            project=project,
            entity=entity,
            name=name,
            job_type=job_type,
            config=scrub(dict(config or {})),
            tags=tags,
            dir=dir,
            mode=init_mode(),  # type: ignore[arg-type]
            reinit="create_new",
            settings=run_settings(),
        )
    except Exception as exc:
        raise TrackingError(f"could not start a W&B run for {what}: {exc}") from exc


def run_settings() -> Any:
    """The ``wandb.Settings`` of every run finetune_wb starts: nothing recorded that may hold a credential.

    * no console capture: whatever the process prints (an httpx INFO line with a gateway's ``?api-key=...``,
      a traceback) would be stored in the run verbatim; our own messages go through logging (secrets
      redacted) and the run's summary holds the errors;
    * no system metadata (``x_disable_meta``): wandb would record the process's command line
      (``--api-key sk-...`` included), the git remote URL (which may carry a token) and the program path;
    * no code or git state saved (a script may hold a key in its source).
    """
    import wandb

    return wandb.Settings(
        console="off", silent=True, x_disable_meta=True, disable_code=True, save_code=False, disable_git=True
    )


def run_dir(run: Any) -> str | None:
    """The directory a run is written to (the parent of ``run.dir``, its files), or None when unknown."""
    files_dir = getattr(run, "dir", None)
    return str(Path(files_dir).parent) if files_dir else None


# Callers that promise to print nothing (FineTuneSession: "fit for services") set this for the duration of a
# step, so the hint goes to the logger even when no logging is configured. A ContextVar: per thread / task.
hint_to_logger_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "finetune_wb_hint_to_logger_only", default=False
)


def offline_hint(run: Any = None) -> None:
    """Tell the user, once per process, how to upload offline runs later."""
    global _hint_given
    if is_disabled(run):
        return  # nothing was written, so there is nothing to upload later
    with _hint_lock:
        if _hint_given:
            return
        _hint_given = True
    directory = run_dir(run) if run is not None else None
    wandb_dir = os.environ.get("WANDB_DIR") or "."
    every = os.path.join(
        str(Path(directory).parent) if directory else os.path.join(wandb_dir, "wandb"), "offline-run-*"
    )
    this = f"`wandb sync {directory}` for this run, " if directory else ""
    message = (
        f"W&B is offline: runs are written locally. Upload them later with `wandb login`, then {this}"
        f"`wandb sync {every}` for every offline run (or `wandb sync --yes` from the directory "
        "holding ./wandb). Lineage edges that need the server are kept as ids and digests in each run's "
        "config under 'lineage'."
    )
    if _logging_configured() or hint_to_logger_only.get():
        logger.warning("%s", message)
    else:  # a script or notebook that never set up logging would see nothing (the package's NullHandler)
        print(f"finetune_wb: {message}", file=sys.stderr)


def _logging_configured() -> bool:
    """Whether a warning from our logger reaches a real handler (not only the package's NullHandler)."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _reset_offline_hint() -> None:
    """For tests: allow the hint to be given again."""
    global _hint_given
    with _hint_lock:
        _hint_given = False
