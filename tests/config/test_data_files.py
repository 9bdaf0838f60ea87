"""``finetune-wb run`` reads a data file exactly as ``session.prepare`` does (one reader, in the data stage).

Regression tests for two files that used to read differently through the CLI: a CSV/TSV with a UTF-8
byte-order mark (its first column came back as ``'\\ufefftext'``) and a ``.json`` file holding one array of
records (refused as "one JSON object per line").
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb import FineTuneSession, Template
from finetune_wb.cli import main

ROWS = [
    {"text": f"clause {i} {'shall' if i % 2 else 'may'} apply", "answer": "Yes" if i % 2 else "No"}
    for i in range(12)
]


def _write(path: Path) -> Path:
    """``ROWS`` in the format ``path``'s suffix names: CSV/TSV with a BOM, or a pretty-printed JSON array."""
    if path.suffix == ".json":
        path.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8-sig", newline="") as fh:  # utf-8-sig writes the byte-order mark
        writer = csv.DictWriter(
            fh, fieldnames=["text", "answer"], delimiter="\t" if path.suffix == ".tsv" else ","
        )
        writer.writeheader()
        writer.writerows(ROWS)
    return path


CONFIG = """
wandb_mode = "disabled"

[data]
path = "{data}"

[template]
system = "Answer Yes or No."
user = "Clause: {{text}}"

[split]
n_train = 10
seed = 5

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 1

[evaluation]
skip = true
"""


@pytest.mark.parametrize("name", ["records.csv", "records.tsv", "records.json"])
def test_run_reads_the_file_as_the_session_does(
    finetune_emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    finetune_emulator.pace = 0.01
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    data = _write(tmp_path / name)
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(data=name), encoding="utf-8")

    assert main(["run", str(cfg), "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["job_status"] == "succeeded" and result["validation"]["n_examples"] == 10
    by_run = json.loads(Path(result["state_path"]).read_text(encoding="utf-8"))
    train_lines = Path(by_run["train_path"]).read_text(encoding="utf-8").splitlines()
    users = {json.loads(line)["messages"][1]["content"] for line in train_lines}
    assert users <= {f"Clause: {row['text']}" for row in ROWS} and len(users) == 10

    session = FineTuneSession(state_path=tmp_path / "direct.json", wandb_mode="disabled")
    session.prepare(
        data,
        template=Template(system="Answer Yes or No.", user="Clause: {text}"),
        n_train=10,
        seed=5,
    )
    assert (session.state.train_digest, session.state.test_digest) == (
        by_run["train_digest"],
        by_run["test_digest"],
    )
