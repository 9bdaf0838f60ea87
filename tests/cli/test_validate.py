from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main


def example(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i % 2}"}]}


def write(tmp_path: Path, extra: tuple[str, ...] = (), n: int = 10) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text(
        "".join(json.dumps(example(i)) + "\n" for i in range(n)) + "".join(e + "\n" for e in extra)
    )
    return path


def test_ok_file_exits_0_with_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "status: OK" in out and "epochs" in out


def test_warnings_still_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, ("   ",)))]) == 0
    assert "blank_line" in capsys.readouterr().out


def test_errors_exit_1_and_json_has_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, ("not json",))), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    for key in ("ok", "n_examples", "issues", "tokens", "n_epochs", "estimated_cost_usd"):
        assert key in data
    assert data["ok"] is False
    assert data["n_examples"] == 11
    assert data["issues"] == [
        {"line": 11, "code": "invalid_json", "severity": "error", "message": data["issues"][0]["message"]}
    ]
    assert data["tokens"]["billed"] == data["tokens"]["billed_per_epoch"] * data["n_epochs"]


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.jsonl"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["issues"][0]["code"] == "file_unreadable"


def test_model_method_and_max_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert main(["validate", str(path), "--max-cost", "0.0000001", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["issues"][0]["code"] == "over_budget"
    assert main(["validate", str(path), "--model", "gpt-3.5-turbo-0125", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"]["encoding"] == "cl100k_base"
    assert main(["validate", str(path), "--method", "dpo", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["issues"][0]["code"] == "wrong_format"
    with pytest.raises(SystemExit):
        main(["validate", str(path), "--method", "rl"])


def test_console_script_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "finetune_wb", "validate", str(write(tmp_path, n=3)), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["issues"][0]["code"] == "too_few_examples"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--n-epochs", "0"], "--n-epochs: '0' is not an integer from 1 to 50"),
        (["--n-epochs", "51"], "--n-epochs"),
        (["--max-cost", "-5"], "--max-cost: '-5' is not a number of US dollars >= 0"),
        (["--max-cost", "nan"], "--max-cost"),
        (["--max-issues", "-1"], "--max-issues"),
    ],
)
def test_out_of_range_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", str(write(tmp_path)), *args])
    assert info.value.code == 2  # argparse's usage error, before the file is touched
    assert says in capsys.readouterr().err


def test_n_epochs_option_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path)), "--n-epochs", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_epochs"] == 4
    assert data["tokens"]["billed"] == 4 * data["tokens"]["billed_per_epoch"]
