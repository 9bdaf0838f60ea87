"""What "the file cannot be read at all" means (report.unreadable, CLI exit code 2), case by case.

Unreadable: the path is missing, is a directory, cannot be opened (permission denied) or fails while being
read (an I/O error), or its bytes are not UTF-8 text at all (UTF-16/32, binary or compressed data, or not one
line that decodes as UTF-8). Readable but wrong (exit 1): an empty file, a few bad lines among good ones.
"""

from __future__ import annotations

import builtins
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.validation.validate import validate_file


def example(i: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"q{i} café"}, {"role": "assistant", "content": f"a{i % 2}"}]
    }


def jsonl(n: int = 10) -> str:
    return "".join(json.dumps(example(i), ensure_ascii=False) + "\n" for i in range(n))


def exit_code(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["validate", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def assert_unreadable(path: Path, capsys: pytest.CaptureFixture[str], *words: str) -> None:
    code, data = exit_code(path, capsys)
    assert code == 2
    assert data["ok"] is False
    unreadable = [i for i in data["issues"] if i["code"] == "file_unreadable"]
    assert len(unreadable) == 1 and unreadable[0]["line"] is None
    for word in (str(path), *words):
        assert word in unreadable[0]["message"]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_unreadable(tmp_path / "missing.jsonl", capsys, "does not exist")


def test_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_unreadable(tmp_path, capsys, "Is a directory")


def test_permission_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests may run as root, where chmod 000 stops nothing; make open() refuse like the OS would.
    path = tmp_path / "secret.jsonl"
    path.write_text(jsonl())
    real_open = builtins.open

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    assert_unreadable(path, capsys, "Permission denied")


def test_io_error_while_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "flaky.jsonl"
    path.write_text(jsonl(20))
    real_open = builtins.open

    class FailingReader:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> FailingReader:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def peek(self, n: int = 0) -> bytes:
            return bytes(self.f.peek(n))

        def __iter__(self) -> Any:
            for i, line in enumerate(self.f):
                if i == 5:
                    raise OSError(5, "Input/output error")
                yield line

    def flaky_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, *args, **kwargs)
        return FailingReader(f) if str(file) == str(path) else f

    monkeypatch.setattr(builtins, "open", flaky_open)
    assert_unreadable(path, capsys, "Input/output error")


def test_utf16_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "utf16.jsonl"
    path.write_text(jsonl(), encoding="utf-16")  # with its byte-order mark
    assert_unreadable(path, capsys, "UTF-16 byte-order mark", "save it as UTF-8")


def test_utf16_without_bom_and_gzip_are_caught_by_their_nul_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "utf16le.jsonl"
    path.write_bytes(jsonl().encode("utf-16-le"))
    assert_unreadable(path, capsys, "NUL byte at line 1")
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(50).encode(), mtime=0))
    assert_unreadable(path, capsys, "compressed")


def test_no_line_is_utf8_keeps_the_line_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(jsonl(12).encode("latin-1"))
    assert_unreadable(path, capsys, "no line is valid UTF-8")
    report = validate_file(path)
    assert report.unreadable
    assert [i.line for i in report.issues if i.code == "invalid_utf8"] == list(range(1, 13))


def test_some_bad_lines_are_errors_not_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mostly-good.jsonl"
    path.write_bytes(
        jsonl(12).encode() + json.dumps(example(99), ensure_ascii=False).encode("latin-1") + b"\n"
    )
    code, data = exit_code(path, capsys)
    assert code == 1
    assert [(i["line"], i["code"]) for i in data["issues"]] == [(13, "invalid_utf8")]


def test_empty_file_is_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    code, data = exit_code(path, capsys)
    assert code == 1
    assert [i["code"] for i in data["issues"]] == ["empty_file"]


def test_utf8_bom_is_still_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl().encode())
    code, data = exit_code(path, capsys)
    assert code == 0 and data["issues"] == []


def test_text_output_of_an_unreadable_file_goes_to_stderr_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "utf16.jsonl"
    path.write_text(jsonl(), encoding="utf-16")
    proc = subprocess.run(
        [sys.executable, "-m", "finetune_wb", "validate", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "not a UTF-8 text file" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_pipe_is_read_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`producer | finetune-wb validate /dev/stdin`: the not-text sniff must not eat the first 64 KiB."""
    import os
    import threading

    fifo = tmp_path / "train.fifo"
    os.mkfifo(fifo)
    data = jsonl(2_000).encode()
    assert len(data) > 65_536

    def produce() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    report = validate_file(fifo)
    writer.join(timeout=10)
    assert report.n_examples == 2_000 and report.ok, report.issues[:3]
