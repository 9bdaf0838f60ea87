"""Token counting in a second process for large training files.

On a large file most of the validator's time is tiktoken encoding, which one Python process cannot spread
over cores. Here the file is cut into chunks at line ends and a worker process counts the tokens of some of
them while the validator reads the whole file as usual (parsing every line and running every check
itself). Chunk numbers sit in a pipe that both processes read from: whoever takes a number counts that
chunk, so each chunk is counted exactly once and the split balances itself whatever either side costs (a
slow worker start, a busy core). The validator takes a number only when it reaches a chunk the worker has
not claimed, so neither waits for more than the one chunk the worker may be finishing.

What the worker sends back is three integers per line (total tokens, assistant tokens, messages), and the
validator consumes them in file order, so only a few chunks' worth (24 bytes a line) are ever held: memory
stays flat in file size. The counts come from the same ``TokenCounter.example_tokens`` on the same parsed
value, so totals are identical to a serial run (tests check it); a line the worker could not parse, and any
worker failure, falls back to counting in the validator.

The worker is a ``fork`` of the validating process where that is safe (Linux, no other thread running): it
then shares the loaded encoding's memory and starts at once. Otherwise (threads alive, as in a notebook
kernel, or no ``fork``) it is a fresh ``python -m finetune_wb.validation.parallel_tokens`` process, which
loads the encoding from tiktoken's cache (``TIKTOKEN_CACHE_DIR`` is inherited).

Files smaller than ``MIN_BYTES`` (8 MB, ~13,000 chat examples of a typical size) are counted serially:
below that the worker's start-up and the extra reading are not repaid. ``FINETUNE_WB_PARALLEL_TOKENS=0``
turns the worker off, ``=1`` forces it on for any file of two chunks or more.
"""

from __future__ import annotations

import contextlib
import json
import json.scanner
import os
import select
import struct
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Any

from finetune_wb.validation.tokens import TokenCounter

MIN_BYTES = 8_000_000
"""Files at least this large get a token-counting worker (see the module docstring)."""

ENV = "FINETUNE_WB_PARALLEL_TOKENS"

_CLAIM = struct.Struct("<I")
_HEADER = struct.Struct("<II")  # chunk index, payload length (bytes)
_NO_COUNT = -1


def chunk_size(file_size: int) -> int:
    """About 64 chunks per file, each 256 KiB to 4 MiB (cut at line ends)."""
    return min(4 << 20, max(256 << 10, file_size // 64))


def wanted(path: Path) -> bool:
    """Whether a file is worth a worker: large enough, more than one CPU, not turned off."""
    setting = os.environ.get(ENV, "").strip()
    if setting == "0":
        return False
    if setting == "1":
        return True
    if (os.cpu_count() or 1) < 2 or os.name != "posix":  # pipes and select() as used here are POSIX
        return False
    try:
        return path.is_file() and path.stat().st_size >= MIN_BYTES
    except OSError:
        return False


def start(path: Path, counter: TokenCounter, *, force: bool = False) -> Precounter | None:
    """A running worker for ``path`` when it pays (or ``force``), else None; never raises."""
    if os.name != "posix" or not (force or wanted(path)):
        return None
    try:
        pc = Precounter(path, counter.encoding.name)
    except Exception:  # no worker: the validator simply counts everything itself
        return None
    return pc if pc.started else None


class Precounter:
    """The validator's side: ``pc(line)`` is (total, assistant, messages) from the worker, or None when the
    validator counts that line itself."""

    def __init__(self, path: Path, encoding: str, *, chunk_bytes: int | None = None) -> None:
        self.n_from_worker = 0
        """Lines whose counts came from the worker (for tests and benchmarks)."""
        self.chunks_counted_here = 0
        self.wait_seconds = 0.0
        """Time the validator spent waiting for the worker's counts."""
        self.started = False
        chunk_bytes = chunk_bytes or chunk_size(path.stat().st_size)
        self._table = chunk_table(path, chunk_bytes)
        self._firsts = [first for _, _, first in self._table] + [sys.maxsize]
        self._ci = 0  # the chunk the validator is in; chunk 0 is always the validator's
        self._next = self._firsts[1]  # first line of the next chunk
        self._cur: array[int] | None = None  # the worker's counts for the current chunk, if any
        self._cur_first = 1
        self._results: dict[int, array[int]] = {}
        self._mine: set[int] = set()  # chunks claimed for the validator ahead of reaching them
        self._buffer = b""
        self._dead = False
        self._claims_done = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        if len(self._table) < 2:
            return
        claims_r, claims_w = os.pipe()
        results_r, results_w = os.pipe()
        for fd in (claims_r, results_r):
            _widen(fd)
        numbers = b"".join(_CLAIM.pack(i) for i in range(1, len(self._table)))
        if len(numbers) > 60_000:  # more than a pipe surely holds before anyone reads: no worker
            for fd in (claims_r, claims_w, results_r, results_w):
                os.close(fd)
            return
        os.write(claims_w, numbers)
        os.close(claims_w)
        if _fork_is_safe():
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    os.close(results_r)
                    serve(path, encoding, claims_r, results_w, chunk_bytes)
                    code = 0
                finally:
                    os._exit(code)
            self._pid = pid
        else:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    str(path),
                    encoding,
                    str(chunk_bytes),
                    str(claims_r),
                    str(results_w),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(claims_r, results_w),
            )
        os.close(results_w)
        self._claims, self._in = claims_r, results_r
        self.started = True

    def __call__(self, line: int) -> tuple[int, int, int] | None:
        if line >= self._next:
            self._enter(line)
        counts = self._cur
        if counts is None:
            return None
        i = (line - self._cur_first) * 3
        if i + 2 >= len(counts) or counts[i] == _NO_COUNT:
            return None
        self.n_from_worker += 1
        return counts[i], counts[i + 1], counts[i + 2]

    def _enter(self, line: int) -> None:
        """Move to the chunk holding ``line``: the worker's counts for it, or a claim to count it here."""
        firsts = self._firsts
        ci = self._ci
        while firsts[ci + 1] <= line:
            ci += 1
        self._ci, self._next, self._cur_first = ci, firsts[ci + 1], firsts[ci]
        self._cur = None
        if not self.started:
            return
        self._read(block=False)
        counts = self._results.pop(ci, None)
        for old in [k for k in self._results if k < ci]:
            del self._results[old]
        if counts is None and not self._dead and ci not in self._mine:
            mine = self._claim_up_to(ci)
            if not mine and ci not in self._results:
                waited = time.perf_counter()
                while not self._dead and ci not in self._results:
                    self._read(block=True)  # the worker has this chunk in hand
                self.wait_seconds += time.perf_counter() - waited
            counts = self._results.pop(ci, None)
        if counts is None:
            self.chunks_counted_here += 1
        self._cur = counts

    def _claim_up_to(self, ci: int) -> bool:
        """Take chunk numbers until one at or past ``ci``; True when ``ci`` itself is now ours."""
        while not self._claims_done:
            try:
                data = os.read(self._claims, _CLAIM.size)
            except OSError:
                data = b""
            if len(data) != _CLAIM.size:
                self._claims_done = True
                break
            (j,) = _CLAIM.unpack(data)
            if j > ci:  # the worker holds ci; j is ours, counted here when the validator gets there
                self._mine.add(j)
                return False
            if j == ci:
                return True
        return False

    def _read(self, *, block: bool) -> None:
        if self._dead or (not block and not select.select([self._in], [], [], 0)[0]):
            return
        try:
            data = os.read(self._in, 1 << 20)
        except OSError:
            data = b""
        if not data:
            self._dead = True
            return
        buffer = self._buffer + data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            ci, size = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            counts = array("q")
            counts.frombytes(buffer[start + _HEADER.size : end])
            if ci >= self._ci:
                self._results[ci] = counts
            start = end
        self._buffer = buffer[start:]

    def close(self) -> None:
        """Stop the worker (if still running) and reap it."""
        if not self.started:
            return
        self.started = False
        for fd in (self._claims, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, 15)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
        elif self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._results.clear()

    def __enter__(self) -> Precounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _widen(fd: int) -> None:
    """A 1 MiB pipe buffer (Linux), so the worker rarely waits for the validator to read its results."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def _fork_is_safe() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux") and threading.active_count() == 1


def chunk_table(path: Path, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """(start byte, end byte, first line number) of chunks of about ``chunk_bytes``, cut at line ends."""
    chunks: list[tuple[int, int, int]] = []
    start = 0
    line = 1
    offset = 0  # bytes read so far
    pending = 0  # bytes read since the last cut
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            offset += len(block)
            cut = block.rfind(b"\n")
            if cut < 0:
                pending += len(block)
                continue
            end = offset - (len(block) - cut - 1)
            chunks.append((start, end, line))
            line += block.count(b"\n", 0, cut + 1)
            start = end
            pending = len(block) - cut - 1
        if pending:
            chunks.append((start, start + pending, line))
    return chunks


def count_lines(data: bytes, counter: TokenCounter) -> array[int]:
    """Counts for each line of ``data``, as the validator's reader would parse it; -1s where it cannot."""
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
    out = array("q")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    example_tokens = counter.example_tokens
    for raw in lines:
        value: Any = None
        try:
            text = raw.decode("utf-8")
            value, end = scan(text, 0)
            if end != len(text) and text[end:].strip(" \t\r\n"):
                value = None
        except Exception:
            value = None
        if type(value) is dict:
            try:
                out.extend(example_tokens(value))
                continue
            except Exception:
                pass
        out.extend((_NO_COUNT, _NO_COUNT, _NO_COUNT))
    return out


def serve(path: Path, encoding: str, claims_fd: int, out_fd: int, chunk_bytes: int) -> None:
    """The worker: take chunk numbers until there are none left; send each chunk's counts."""
    counter = TokenCounter(encoding)
    table = chunk_table(path, chunk_bytes)
    with open(path, "rb") as f:
        while True:
            data = os.read(claims_fd, _CLAIM.size)
            if len(data) != _CLAIM.size:
                break
            (ci,) = _CLAIM.unpack(data)
            start, end, _ = table[ci]
            f.seek(start)
            payload = count_lines(f.read(end - start), counter).tobytes()
            view = memoryview(_HEADER.pack(ci, len(payload)) + payload)
            while view:
                view = view[os.write(out_fd, view) :]
    os.close(out_fd)


def _main(argv: list[str]) -> int:
    path, encoding, chunk_bytes, claims_fd, out_fd = argv
    serve(Path(path), encoding, int(claims_fd), int(out_fd), int(chunk_bytes))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
