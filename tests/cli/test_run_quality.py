"""``finetune-wb run CONFIG``: the data-quality gate before the upload, from ``[quality]`` or the flags
``--quality`` / ``--accept-quality``; a refused run uploads nothing and creates no job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main

KEY = "sk-proj-Q7fT2mZk9LpX4vB8nR1sW6yC3hJ5dG0a"  # fake, shaped like a real key

CONFIG = """
project = "run-quality"
wandb_mode = "disabled"

[data]
path = "records.jsonl"

[split]
n_train = 16
seed = 3

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 1

[evaluation]
skip = true
"""


def _records(path: Path) -> Path:
    words = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
    ]
    rows = [
        {
            "text": " ".join(f"{words[(i + k) % len(words)]}{i}n{k}" for k in range(12)),
            "answer": ("Yes", "No")[i % 2],
        }
        for i in range(24)
    ]
    for row in rows:  # the key in every record: whichever rows the split puts in train, one holds it
        row["text"] += f" token {KEY}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    finetune_emulator.pace = 0.01
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _records(tmp_path / "records.jsonl")
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    return cfg


def _paid(emulator: Any) -> list[str]:
    paid = ("/v1/files", "/v1/fine_tuning")
    return [e.path for e in emulator.journal if e.method == "POST" and e.path.startswith(paid)]


def test_run_stops_on_a_secret_and_says_how_to_accept_it(
    config: Path, finetune_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(config)]) == 1
    err = capsys.readouterr().err
    assert "secret" in err and "--accept-quality secret" in err and "[quality] accept" in err
    assert KEY not in err  # masked
    assert _paid(finetune_emulator) == []  # nothing uploaded, no job


def test_run_accepts_the_finding_from_the_flag_or_the_config(
    config: Path, finetune_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(config), "--accept-quality", "secret", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["job_status"] == "succeeded"
    assert "data quality: " in err and "secret" in err and "accepted: secret" in err
    assert KEY not in out + err


def test_run_quality_from_the_config_table(config: Path, finetune_emulator: Any) -> None:
    config.write_text(CONFIG + '\n[quality]\nmode = "warn"\n', encoding="utf-8")
    assert main(["run", str(config)]) == 0
    assert any(p.startswith("/v1/fine_tuning") for p in _paid(finetune_emulator))


def test_run_quality_off_flag_overrides_the_config(tmp_path: Path, config: Path) -> None:
    config.write_text(CONFIG + '\n[quality]\nmode = "check"\n', encoding="utf-8")
    assert main(["run", str(config), "--quality", "off"]) == 0


@pytest.mark.parametrize(
    ("extra", "args", "expected"),
    [
        ('\n[quality]\naccept = ["secrets"]\n', [], "quality.accept"),
        ('\n[quality]\nallow = ["("]\n', [], "quality.allow[0]"),
        ("", ["--accept-quality", "leak"], "--accept-quality"),
    ],
)
def test_run_refuses_unknown_codes_before_anything_is_sent(
    config: Path,
    finetune_emulator: Any,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    args: list[str],
    expected: str,
) -> None:
    config.write_text(CONFIG + extra, encoding="utf-8")
    assert main(["run", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and ("unknown finding code" in err or "regular expression" in err)
    assert _paid(finetune_emulator) == []
