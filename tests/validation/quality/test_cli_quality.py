"""`finetune-wb validate TRAIN --quality [--test TEST] --json`: the contract's keys, codes and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from tests.validation.quality import crafted as c


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``finetune-wb validate ARGS`` in this process (as the script does) -> (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["validate", *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _files(tmp_path: Path) -> tuple[Path, Path]:
    rows = c.clean_rows(20)
    rows[6] = rows[2]  # duplicate: lines 3 and 7
    test = [
        c.chat(c.filler(11), "Technical"),
        c.chat(c.filler(900), "Billing"),
    ]  # test line 1 = train line 12
    return c.write(tmp_path / "train.jsonl", rows), c.write(tmp_path / "test.jsonl", test)


def test_json_has_the_quality_key_with_findings_and_counts(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    train, test = _files(tmp_path)
    code, out, err = cli(str(train), "--quality", "--test", str(test), "--json")
    assert code == 1, err  # leakage is an error
    doc: dict[str, Any] = json.loads(out)
    quality = doc["quality"]
    assert quality["counts"] == {"leakage": 1, "duplicate": 1}
    assert [set(f) for f in quality["findings"]] == [
        {"code", "severity", "lines", "test_lines", "message"}
    ] * 2
    by_code = {f["code"]: f for f in quality["findings"]}
    assert by_code["leakage"]["lines"] == [12] and by_code["leakage"]["test_lines"] == [1]
    assert by_code["leakage"]["severity"] == "error"
    assert by_code["duplicate"]["lines"] == [3, 7] and by_code["duplicate"]["test_lines"] == []
    assert by_code["duplicate"]["severity"] == "warning"
    assert doc["ok"] is False and doc["n_errors"] == 0  # the file itself is valid


def test_warnings_only_exit_0_and_no_quality_key_without_the_flag(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    train, _ = _files(tmp_path)
    code, out, _ = cli(str(train), "--quality", "--json")
    assert code == 0 and json.loads(out)["quality"]["counts"] == {"duplicate": 1}
    code, out, _ = cli(str(train), "--json")
    assert code == 0 and "quality" not in json.loads(out)


def test_a_secret_exits_1_and_severity_can_turn_it_off(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    rows = c.clean_rows(12)
    rows[4] = c.chat(f"{c.filler(4)} {c.AWS_KEY}", "Billing")
    path = c.write(tmp_path / "s.jsonl", rows)
    code, out, _ = cli(str(path), "--quality", "--json")
    (finding,) = json.loads(out)["quality"]["findings"]
    assert code == 1 and finding["code"] == "secret" and finding["lines"] == [5]
    assert c.AWS_KEY not in out
    code, out, _ = cli(str(path), "--quality", "--severity", "secret=warning")
    assert code == 0 and "warning: [secret]" in out and c.AWS_KEY not in out
    code, _, _ = cli(str(path), "--quality", "--allow", "^AKIAQ3")
    assert code == 0


def test_text_output_and_usage_errors(tmp_path: Path, cli: Callable[..., tuple[int, str, str]]) -> None:
    train, test = _files(tmp_path)
    code, out, _ = cli(str(train), "--test", str(test))  # --test implies --quality
    assert code == 1 and "Data quality of" in out and "[leakage] test line 1" in out
    code, _, err = cli(str(train), "--test", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "nope.jsonl does not exist" in err
    code, _, err = cli(str(train), "--quality", "--severity", "secret")
    assert code == 2 and "CODE=LEVEL" in err
    code, _, err = cli(str(train), "--quality", "--severity", "bogus=off")
    assert code == 2 and "unknown finding code 'bogus'" in err
    code, _, err = cli(str(train), "--quality", "--near-duplicate-threshold", "2")
    assert code == 2 and "similarity" in err


def test_the_installed_script_gives_the_same_json(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    train, test = _files(tmp_path)
    script = str(Path(sys.executable).with_name("finetune-wb"))
    proc = subprocess.run(
        [script, "validate", str(train), "--quality", "--test", str(test), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, out, _ = cli(str(train), "--quality", "--test", str(test), "--json")
    assert proc.returncode == code == 1
    assert json.loads(proc.stdout)["quality"] == json.loads(out)["quality"]
