"""Reading a training file for the validator: one pass, line by line, bytes sniffed before parsing.

A file that is not UTF-8 text at all (UTF-16, binary, compressed) is refused before the first line, so the
report names the one real problem instead of thousands of per-line errors.
"""

from __future__ import annotations

import io
import json
import json.scanner
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from finetune_wb.validation.accumulate import IssueCollector

if TYPE_CHECKING:
    pass


def iter_lines(path: Path, collector: IssueCollector, stats: dict[str, int]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for every non-blank line; parse problems go to the collector."""
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
    line_no = 0
    with open(path, "rb", buffering=SNIFF_BYTES) as f:
        # Sniffed from the same handle (peek consumes nothing), so a pipe or /dev/stdin is read only once.
        reason = not_utf8_text(cast(io.BufferedReader, f).peek(SNIFF_BYTES)[:SNIFF_BYTES])
        if reason is not None:
            raise NotText(reason)
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark: harmless, accepted
            if raw[:1] != b"{" and not raw.strip():  # (the first-byte test spares a copy per line)
                collector.add(line_no, "blank_line", "warning", "blank line (skipped); remove it")
                continue
            if b"\x00" in raw:  # JSON text never holds a raw NUL (a string must escape it as \u0000)
                collector.add(
                    line_no,
                    "nul_byte",
                    "error",
                    f"a raw NUL byte at column {raw.index(0) + 1}; remove it (inside a string write \\u0000)",
                )
                yield line_no, UNPARSED
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                collector.add(
                    line_no,
                    "invalid_utf8",
                    "error",
                    f"bytes at column {exc.start + 1} are not valid UTF-8; save the file as UTF-8",
                )
                yield line_no, UNPARSED
                continue
            try:
                # The decoder's scanner directly (what json.loads runs after two whitespace regexes);
                # anything unusual falls back to json.loads for its exact error message.
                value, end = scan(text, 0)
                if end != len(text) and text[end:].strip(" \t\r\n"):
                    raise ValueError("extra data")
            except (StopIteration, ValueError, RecursionError):
                value = UNPARSED
            if value is UNPARSED:
                try:
                    value = json.loads(text)
                except (ValueError, RecursionError) as exc:
                    detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
                    collector.add(
                        line_no, "invalid_json", "error", f"not valid JSON ({detail}); one object per line"
                    )
                    yield line_no, UNPARSED
                    continue
            if b"\\u" in raw and _lone_surrogate(text, value):
                yield line_no, _surrogate_issue(collector, line_no, text)
                continue
            yield line_no, value
    stats["lines"] = line_no


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate(text: str, value: Any) -> bool:
    """Whether the parsed value holds a lone surrogate (``"\\ud800"``), which no UTF-8 file can carry."""
    if _SURROGATE_ESCAPE.search(text) is None:
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_issue(collector: IssueCollector, line_no: int, text: str) -> object:
    found = _SURROGATE_ESCAPE.search(text)
    column = found.start() + 1 if found else 1
    escape = found.group(0) if found else "\\ud800"
    collector.add(
        line_no,
        "invalid_unicode",
        "error",
        f"the JSON string escape {escape} at column {column} is half of a surrogate pair with no other half;"
        " it stands for no character and cannot be encoded as UTF-8 (the provider rejects it): write the"
        " character itself, or the full pair",
    )
    return UNPARSED


UNPARSED = object()


SNIFF_BYTES = 65_536


class NotText(Exception):
    """The file is not UTF-8 text at all (raised before the first line is parsed)."""


def not_utf8_text(head: bytes) -> str | None:
    """Why the file is not UTF-8 text at all (a UTF-16/32 file, a binary or compressed file), else None.

    JSON text can never hold a raw NUL byte (strings must escape it), so a NUL in the first 64 KiB means the
    file is not JSONL in UTF-8; listing thousands of per-line errors for it would hide the one real problem.
    """
    for bom, name in (
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\xfe\xff", "UTF-16"),
        (b"\xff\xfe", "UTF-16"),
    ):
        if head.startswith(bom):
            return f"it starts with a {name} byte-order mark"
    nul = head.find(b"\x00")
    # One stray NUL in a text file is an error on its line (see iter_lines); a file is binary when NULs are
    # more than one byte in a thousand of its head (UTF-16 text is half NULs, compressed data ~1/256).
    if nul >= 0 and head.count(b"\x00") > max(1, len(head) // 1000):
        line = head.count(b"\n", 0, nul) + 1
        return f"it has a NUL byte at line {line}, byte {nul + 1} (is it binary, compressed or UTF-16?)"
    return None
