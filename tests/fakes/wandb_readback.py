"""Read offline W&B runs back in tests, through ``wandb leet inspect`` (the only reader of .wandb files).

Offline runs write only ``wandb/offline-run-*/run-*.wandb``; ``wandb leet inspect --summary --json RUN_DIR``
prints the run's state, config and summary, and ``wandb leet inspect --json RUN_DIR`` every record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WANDB_BIN = str(Path(sys.executable).parent / "wandb")


def run_dirs(wandb_dir: str | Path | None = None) -> list[Path]:
    """Every offline run directory under ``$WANDB_DIR/wandb``, oldest first."""
    root = Path(wandb_dir or os.environ["WANDB_DIR"]) / "wandb"
    return sorted(root.glob("offline-run-*"))


def run_dir_of(run_id: str, wandb_dir: str | Path | None = None) -> Path:
    """The offline run directory of one run id (directory names sort by second, not by order)."""
    (found,) = [d for d in run_dirs(wandb_dir) if d.name.endswith(f"-{run_id}")]
    return found


def _core_args(run_dir: Path, flags: tuple[str, ...]) -> list[str]:
    """What ``wandb leet inspect FLAGS RUN_DIR`` executes once its Python CLI resolved the path.

    The ``wandb`` click CLI spends ~1.5 s importing itself before it hands over to the ``wandb-core``
    binary; calling the binary with the same arguments takes ~50 ms, which keeps these tests fast.
    ``cli_inspect`` goes through the full command and a test checks both agree.
    """
    from wandb.util import get_core_path

    run_file = next(run_dir.resolve().glob("*.wandb"))
    return [
        get_core_path(),
        "leet",
        "inspect",
        "--no-observability",
        *flags,
        "--run-file",
        str(run_file),
        str(run_dir.resolve().parent),
    ]


def _run(args: list[str]) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def _inspect(run_dir: Path, *flags: str) -> str:
    return _run(_core_args(run_dir, flags))


def cli_inspect(run_dir: Path, *flags: str) -> str:
    """The same through the documented command: ``wandb leet inspect FLAGS RUN_DIR``."""
    return _run([WANDB_BIN, "leet", "inspect", *flags, str(run_dir)])


@dataclass
class RunReadback:
    """One offline run as read back: summary object and every record."""

    run_dir: Path
    summary_doc: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.summary_doc.get("config") or {}

    @property
    def summary(self) -> dict[str, Any]:
        return self.summary_doc.get("summary") or {}

    @property
    def name(self) -> str:
        return str(self.summary_doc.get("name"))

    @property
    def exit_code(self) -> int | None:
        return self.summary_doc.get("exit_code")

    @property
    def state(self) -> str | None:
        return self.summary_doc.get("state")

    @property
    def job_type(self) -> str | None:
        for rec in self.records:
            if rec.get("type") == "run":
                return rec["run"].get("job_type")
        return None

    def history(self) -> list[dict[str, Any]]:
        """Every history row, in logging order."""
        return [rec["history"]["item"] for rec in self.records if rec.get("type") == "history"]

    def metric_definitions(self) -> list[dict[str, Any]]:
        return [rec["metric"] for rec in self.records if rec.get("type") == "metric"]

    def artifacts(self) -> list[dict[str, Any]]:
        """Artifact records with ``metadata`` parsed from its JSON string."""
        out = []
        for rec in self.records:
            if rec.get("type") == "artifact":
                art = dict(rec["artifact"])
                art["metadata"] = json.loads(art.get("metadata") or "{}")
                out.append(art)
        return out

    def artifact(self, type_: str) -> dict[str, Any]:
        found = [a for a in self.artifacts() if a["type"] == type_]
        assert len(found) == 1, f"expected one {type_} artifact, found {[a['name'] for a in found]}"
        return found[0]


def read_run(run_dir: Path) -> RunReadback:
    summary = json.loads(_inspect(run_dir, "--summary", "--json"))
    records = [json.loads(line) for line in _inspect(run_dir, "--json").splitlines() if line.strip()]
    return RunReadback(run_dir=run_dir, summary_doc=summary, records=records)


def read_runs(wandb_dir: str | Path | None = None) -> list[RunReadback]:
    return [read_run(d) for d in run_dirs(wandb_dir)]


def staged_file(artifact: dict[str, Any], path: str) -> Path:
    """The local staged copy of a file in a logged (offline) artifact."""
    for entry in artifact["manifest"]["contents"]:
        if entry["path"] == path:
            return Path(entry["local_path"])
    raise AssertionError(
        f"{path} not in artifact {artifact['name']}: {[e['path'] for e in artifact['manifest']['contents']]}"
    )


def files_containing(needles: list[str], *roots: str | Path) -> list[str]:
    """Every file under ``roots`` whose bytes contain any of ``needles`` (for secret scans)."""
    hits = []
    encoded = [n.encode() for n in needles if n]
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in encoded):
                    hits.append(str(path))
    return hits
