"""Two inputs found from outside: a lone surrogate escape, and one raw NUL byte in one line of a text file."""

from __future__ import annotations

import json
from pathlib import Path

from finetune_wb.validation.validate import validate_file

GOOD = {"messages": [{"role": "user", "content": "Is it paid?"}, {"role": "assistant", "content": "Yes"}]}


def _lines(n: int = 12) -> list[bytes]:
    return [
        json.dumps(
            {**GOOD, "messages": [{"role": "user", "content": f"Is order {i} paid?"}, GOOD["messages"][1]]}
        ).encode()
        for i in range(n)
    ]


def test_a_lone_surrogate_escape_is_an_error_on_its_line(tmp_path: Path) -> None:
    lines = _lines()
    lines[3] = (
        b'{"messages": [{"role": "user", "content": "bad \\ud800 text"}, {"role": "assistant", "content": "Yes"}]}'
    )
    lines[5] = (
        b'{"messages": [{"role": "user", "content": "a pair \\ud83d\\ude00 is fine"}, {"role": "assistant", "content": "Yes"}]}'
    )
    lines[7] = (
        b'{"messages": [{"role": "user", "content": "low half \\uDC00 alone"}, {"role": "assistant", "content": "No"}]}'
    )
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = validate_file(path)
    bad = [(i.line, i.code, i.severity) for i in report.issues if i.code == "invalid_unicode"]
    assert bad == [(4, "invalid_unicode", "error"), (8, "invalid_unicode", "error")]
    assert "\\ud800 at column" in next(i.message for i in report.issues if i.line == 4)
    assert report.n_examples == 12 and not report.ok and not report.unreadable
    json.dumps(report.model_dump(mode="json"))


def test_one_nul_byte_is_an_error_on_its_line_not_an_unreadable_file(tmp_path: Path) -> None:
    lines = _lines()
    lines[6] = lines[6].replace(b"paid?", b"pa\x00id?")
    path = tmp_path / "n.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = validate_file(path)
    assert not report.unreadable
    assert [(i.line, i.code) for i in report.errors] == [(7, "nul_byte")]
    assert "column" in report.errors[0].message and report.n_examples == 12


def test_many_nul_bytes_still_mean_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\n".join(_lines()) + b"\n" + b"\x00" * 64 + b"\n")
    report = validate_file(path)
    assert report.unreadable and "NUL byte" in report.issues[0].message
