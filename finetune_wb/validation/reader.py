"""Reading a training file for the validator: one pass, line by line, bytes sniffed before parsing.

A file that is not UTF-8 text at all (UTF-16, binary, compressed) is refused before the first line, so the
report names the one real problem instead of thousands of per-line errors.
"""

from __future__ import annotations

import io
import json
import json.scanner
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
            yield line_no, value
    stats["lines"] = line_no


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
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        return f"it has a NUL byte at line {line}, byte {nul + 1} (is it binary, compressed or UTF-16?)"
    return None
