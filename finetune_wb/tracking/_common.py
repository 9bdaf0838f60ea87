"""Small helpers every tracking module needs: offline detection, secret scrubbing, local records.

Nothing here imports wandb at module level; functions that need it import it when called.
"""

from __future__ import annotations

import contextvars
import json
import logging
import netrc
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse, urlsplit

from finetune_wb._paths import atomic_write_text, state_dir

logger = logging.getLogger("finetune_wb.tracking")

# Environment variables whose values are credentials. Their values must never reach W&B or local records.
SECRET_ENV_VARS = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "WANDB_API_KEY",
)
# Environment variables holding URLs that may carry credentials (user:password@host, ?api-key=...).
SECRET_URL_ENV_VARS = ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "WANDB_BASE_URL")
# Dict keys whose values are dropped wherever they appear (compared case-insensitively).
_SECRET_KEYS = re.compile(r"(^|_|-)(api[_-]?key|apikey|authorization|password|secret|ad[_-]?token)$", re.I)
REDACTED = "[redacted]"

_OFFLINE_MODES = {"offline", "dryrun", "disabled"}
_hint_lock = threading.Lock()
_hint_given = False


# Query-parameter and header names that carry credentials (``?api-key=``, ``x-api-key:``, ``?sig=``...).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.I)
# Credentials learned from clients passed in by the caller (not in the environment), for this process.
_registered: set[str] = set()
_registered_lock = threading.Lock()


def url_secrets(url: str | None) -> list[str]:
    """Credentials inside a URL: the user-info password (and ``user:password``) and key-like query values."""
    if not url:
        return []
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
        if parts.username:
            found.append(f"{parts.username}:{parts.password}")
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_PARAM.search(name):
            found.append(value)
    return [v for v in found if v]


def register_client_secrets(client: Any) -> None:
    """Remember the credentials an ``openai`` client carries so they are redacted like the env keys.

    A client built in code (``OpenAI(api_key=...)``, a gateway URL with ``?api-key=``, a custom
    ``api-key`` header) holds keys that are in no environment variable; they must not reach W&B either.
    """
    if client is None:
        return
    values: list[str] = []
    for attr in ("api_key", "_azure_ad_token", "admin_api_key"):
        value = getattr(client, attr, None)
        if isinstance(value, str):
            values.append(value)
    values += url_secrets(str(getattr(client, "base_url", "") or ""))
    for attr in ("_custom_query", "_custom_headers"):
        mapping = getattr(client, attr, None)
        if isinstance(mapping, Mapping):
            for name, value in mapping.items():
                if isinstance(value, str) and _SECRET_PARAM.search(str(name)):
                    values.append(value)
                    if " " in value:  # "Bearer <token>": the token alone too
                        values.append(value.split(" ", 1)[1])
    with _registered_lock:
        _registered.update(v for v in values if v)


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Credential strings in the environment, in registered clients (plus ``extra``), longest first."""
    values = {os.environ.get(name) or "" for name in SECRET_ENV_VARS}
    for name in SECRET_URL_ENV_VARS:
        values.update(url_secrets(os.environ.get(name)))
    with _registered_lock:
        values.update(_registered)
    values.update(v for v in extra if v)
    # Very short values would redact ordinary words; real keys are long.
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


def scrub(obj: Any, *, secrets: Iterable[str] | None = None) -> Any:
    """Return a copy of a JSON-like value with credential keys dropped and secret strings redacted."""
    values = list(secrets) if secrets is not None else known_secrets()
    return _scrub(obj, values)


def _scrub(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, dict):
        return {
            str(k): _scrub(v, secrets)
            for k, v in obj.items()
            if not (isinstance(k, str) and _SECRET_KEYS.search(k) and v not in (None, ""))
        }
    if isinstance(obj, (list, tuple)):
        return [_scrub(v, secrets) for v in obj]
    if isinstance(obj, str):
        for secret in secrets:
            if secret in obj:
                obj = obj.replace(secret, REDACTED)
        return obj
    return obj


def redact_text(text: str, *, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every known secret replaced (for raw file contents going into an artifact)."""
    for secret in secrets if secrets is not None else known_secrets():
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Replace known credentials in a log record's final message (exceptions can quote anything)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


for _name in ("finetune_wb.tracking", "finetune_wb.sync"):
    logging.getLogger(_name).addFilter(RedactSecrets())


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
    run_dir = None
    if run is not None:
        files_dir = getattr(run, "dir", None)
        run_dir = str(Path(files_dir).parent) if files_dir else None
    wandb_dir = os.environ.get("WANDB_DIR") or "."
    every = os.path.join(
        str(Path(run_dir).parent) if run_dir else os.path.join(wandb_dir, "wandb"), "offline-run-*"
    )
    this = f"`wandb sync {run_dir}` for this run, " if run_dir else ""
    message = (
        f"W&B is offline: runs are written locally. Upload them later with `wandb login`, then {this}"
        f"`wandb sync {every}` for every offline run (or `wandb sync --sync-all` from the directory "
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


def safe_name(text: str, *, fallback: str = "artifact") -> str:
    """An artifact name W&B accepts: letters, digits, '-', '_' and '.' only, at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    return (cleaned or fallback)[:128]


# ---------------------------------------------------------------------------------------------------------
# Local records: small JSON documents under state_dir()/tracking, written atomically, guarded by a lock.

_record_lock = threading.RLock()


def _unwritable(path: Path, exc: OSError) -> Exception:
    from finetune_wb.errors import ConfigError

    return ConfigError(
        f"cannot write finetune_wb's local records under {path} ({exc.strerror or exc}); set "
        "FINETUNE_WB_HOME to a writable directory"
    )


def records_dir() -> Path:
    try:
        path = state_dir() / "tracking"
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(Path(exc.filename or os.environ.get("FINETUNE_WB_HOME") or "?"), exc) from exc
    return path


def read_record(name: str) -> dict[str, Any]:
    path = records_dir() / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable local record %s (%s); it will be rewritten", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def write_record(name: str, data: dict[str, Any]) -> None:
    path = records_dir() / name
    try:
        atomic_write_text(path, json.dumps(scrub(data), indent=2, sort_keys=True))
    except OSError as exc:
        raise _unwritable(path.parent, exc) from exc


@contextmanager
def updating_record(name: str) -> Iterator[dict[str, Any]]:
    """Read-modify-write a record under a process-wide lock."""
    with _record_lock:
        data = read_record(name)
        yield data
        write_record(name, data)
