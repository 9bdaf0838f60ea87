"""Near-duplicate prompts: MinHash signatures over word 3-shingles, banded the way MinHashLSH bands them.

The sketch is datasketch's: its ``affine32`` MinHash permutations (``MinHash(num_perm, seed).permutations``,
the MurmurHash3 pre-mix, ``a * h + b mod 2**32``) and the band/row split ``MinHashLSH`` picks
(``MinHashLSH(threshold, num_perm, weights).b / .r``), for a threshold 0.15 below the one asked for
(:func:`candidate_threshold`). What differs is how it is computed and stored, because one ``MinHash``
object and one ``MinHashLSH.insert`` per example cost ~45 µs and a Python set per band key (~390 MB at
200,000 examples): here words are hashed and the permutations applied a batch of examples at a time with
numpy (the signature equals ``MinHash.update_batch``'s; a test checks it), each example keeps one 32-bit
key per band and the low 8 bits of each permutation's minimum, and its shingle hashes go to a temporary
file. The band keys are sorted once at the end to find the candidates; a candidate whose estimate is not
far below the threshold is then confirmed with the exact Jaccard similarity of the two shingle sets, read
back from the file. So the threshold is a property of the texts, not of the sketch's luck: a pair at the
threshold is found 99.9 % of the time, and no pair below it is reported.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 64
SEED = 1
WEIGHTS = (0.1, 0.9)  # false positives cost one comparison; a missed near duplicate costs a wasted job
ESTIMATE_MARGIN = 0.2  # candidates estimated this far below the threshold are not checked exactly
BATCH = 512  # examples per numpy batch
PERM_GROUP = 16  # permutations computed together: ~1.5 MB of temporaries at 45 shingles an example
_P1, _P2 = 0x9E3779B1, 0x85EBCA77
WORD_BASE = 0x01000193  # odd, so it has an inverse modulo 2**32
_WORD_INV = pow(WORD_BASE, -1, 1 << 32)
_MISSING = "near-duplicate checks need datasketch: pip install 'finetune-wb[quality]' (or pass near_duplicates=False)"


def datasketch_params(
    threshold: float, num_perm: int = NUM_PERM, seed: int = SEED
) -> tuple[Any, Any, int, int]:
    """(a, b, bands, rows): datasketch's affine32 permutation parameters and MinHashLSH's banding.

    They depend only on these arguments, so they are computed by datasketch once and kept under
    ``state_dir()/quality/``: later runs skip importing datasketch and scipy (~1.3 s and ~60 MiB).
    """
    import json

    from finetune_wb._paths import atomic_write_text, state_dir

    name = f"minhash-affine32-{num_perm}-{seed}-{threshold:.6g}-{WEIGHTS[0]:g}-{WEIGHTS[1]:g}.json"
    cached = state_dir() / "quality" / name
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        return data["a"], data["b"], int(data["bands"]), int(data["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as exc:
        raise ConfigError(_MISSING) from exc
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=WEIGHTS)
    params: dict[str, Any] = {
        "a": [int(x) for x in a],
        "b": [int(x) for x in b],
        "bands": int(lsh.b),
        "rows": int(lsh.r),
    }
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cached, json.dumps(params))
    except OSError:  # a read-only home only costs the import next time
        pass
    return params["a"], params["b"], params["bands"], params["rows"]


def fmix32(hv: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    import numpy as np

    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


def shingle_hashes(word_hashes: np.ndarray) -> np.ndarray:
    """32-bit hashes of the 3-word shingles of one example's word hashes (at least 3 words)."""
    import numpy as np

    w = word_hashes.astype(np.uint32)
    return (w[:-2] * np.uint32(_P1)) ^ (w[1:-1] * np.uint32(_P2)) ^ w[2:]


def word_hash(word: str) -> int:
    """The 32-bit hash of one word: its UTF-8 bytes as a polynomial in ``WORD_BASE`` (Horner's rule,
    modulo 2**32). :func:`batch_word_hashes` computes the same for whole batches with numpy."""
    h = 0
    for byte in word.encode("utf-8", "surrogatepass"):
        h = (h * WORD_BASE + byte) & 0xFFFFFFFF
    return h


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """``base**k`` modulo 2**32 for k < n (kept and grown, as every batch needs them)."""
    import numpy as np

    have = _POWERS.get(base)
    if have is None or len(have) < n:
        size = max(n, 1 << 18, 0 if have is None else 2 * len(have))
        out = np.full(size, base, dtype=np.uint32)
        out[0] = 1
        have = _POWERS[base] = np.cumprod(out, dtype=np.uint32)  # wraps modulo 2**32
    return have[:n]


def batch_word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(word hashes, end of each text in them) for normalised texts, without a Python loop over words.

    With the bytes ``c`` of all texts joined (by newlines) and ``S[i] = sum(c[k] * Q**k for k < i)`` where
    ``Q`` is the inverse of ``WORD_BASE`` modulo 2**32, the word ``c[s:e]`` hashes to
    ``(S[e] - S[s]) * WORD_BASE**(e - 1)``, which is :func:`word_hash`. A text of fewer than three words is
    padded with the numbers 1 and 2 (so that it has one shingle).
    """
    import numpy as np

    # Texts joined by newlines (a normalised text holds none), words by spaces.
    joined = "\n".join(texts).encode("utf-8", "surrogatepass")
    c = np.frombuffer(joined, dtype=np.uint8)
    size = len(c)
    breaks = np.flatnonzero((c == 32) | (c == 10))
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [size]))
    prefix = np.empty(size + 1, dtype=np.uint32)
    prefix[0] = 0
    np.cumsum(c.astype(np.uint32) * _powers(_WORD_INV, size), dtype=np.uint32, out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * _powers(WORD_BASE, size)[ends - 1]
    text_ends = np.concatenate((np.flatnonzero(c[breaks] == 10) + 1, [len(ends)]))
    n_words = np.diff(text_ends, prepend=0)
    short = np.flatnonzero(n_words < 3)
    if len(short):  # rare: pad each short text to three words
        parts = np.split(hashes, text_ends[:-1])
        for i in short.tolist():
            parts[i] = np.concatenate((parts[i], np.arange(len(parts[i]), 3, dtype=np.uint32)))
        hashes = np.concatenate(parts)
        text_ends = np.cumsum(np.maximum(n_words, 3))
    return hashes, text_ends


class Sketches:
    """Signatures of many texts, added one at a time and computed a batch at a time."""

    def __init__(self, threshold: float, *, num_perm: int = NUM_PERM) -> None:
        import numpy as np

        self.threshold = threshold
        a, b, self.bands, self.rows = datasketch_params(candidate_threshold(threshold), num_perm)
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)
        self.num_perm = num_perm
        self._pending: list[str] = []
        self._rows: list[int] = []
        self.n = 0
        # growing flat buffers (no copy at the end): band keys, 8 bits per permutation, rows
        self._keys = array("I")
        self._sigs = array("B")
        self._index = array("q")
        self.keys: np.ndarray | None = None
        self.sigs: np.ndarray | None = None
        self.index: np.ndarray | None = None  # row (example position) of each signature
        self._buffer: np.ndarray | None = None
        self._band_weights = np.uint64(0x100000001B3) ** np.arange(self.rows - 1, -1, -1, dtype=np.uint64)
        # Every signature's shingle hashes, spilled to a temporary file (4 bytes a shingle) and read back
        # only for the candidate pairs, whose similarity is then computed exactly.
        self._spill: Any = None
        self._starts = array("q")  # position -> first shingle in the spill file (one extra at the end)
        self._cache: dict[int, np.ndarray] = {}

    def add(self, row: int, text: str) -> None:
        """Sketch example ``row`` from its normalised text (words separated by one space, see
        :func:`~.extract.normalise`); an empty text gets no signature."""
        if not text:
            return
        self._pending.append(text)
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        import numpy as np

        if not self._rows:
            return
        n = len(self._rows)
        w, ends = batch_word_hashes(self._pending)
        starts = np.concatenate(([0], ends[:-1]))
        shingles = shingle_hashes(w)  # shingles spanning two examples are dropped below
        counts = ends - starts - 2
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pos = np.repeat(starts - first, counts) + np.arange(counts.sum())
        hv = fmix32(shingles[pos])
        # Permutations a group at a time into one reused buffer: (group, shingles) stays in the CPU's cache
        # and the reduction runs along contiguous memory (15x faster than along axis 0).
        group = PERM_GROUP
        if self._buffer is None or self._buffer.shape[1] < len(hv):
            self._buffer = np.empty((group, max(len(hv), 1 << 15)), dtype=np.uint32)
        buf = self._buffer[:, : len(hv)]
        sig = np.empty((self.num_perm, n), dtype=np.uint32)
        for g in range(0, self.num_perm, group):
            part = buf[: min(group, self.num_perm - g)]
            np.multiply(self.a[g : g + group, None], hv[None, :], out=part)
            np.add(part, self.b[g : g + group, None], out=part)
            np.minimum.reduceat(part, first, axis=1, out=sig[g : g + group])
        sig = sig.T
        # One 32-bit key per band: a polynomial of its rows' values (wrapping arithmetic), folded. Two
        # different bands share a key by chance about n**2 / 2**33 times a band (5 at 200,000 examples):
        # such a pair is only one more candidate for the exact check.
        used = sig[:, : self.bands * self.rows].reshape(n, self.bands, self.rows).astype(np.uint64)
        wide = (used * self._band_weights).sum(axis=2, dtype=np.uint64)
        keys = ((wide ^ (wide >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        if self._spill is None:
            import tempfile

            self._spill = tempfile.TemporaryFile(prefix="finetune-wb-shingles-")  # noqa: SIM115 (closed by close())
            self._starts.append(0)
        written = self._starts[-1]
        self._spill.write(hv.tobytes())
        self._starts.extend((written + np.cumsum(counts)).tolist())
        self._keys.frombytes(np.ascontiguousarray(keys).tobytes())
        self._sigs.frombytes((sig & np.uint32(0xFF)).astype(np.uint8).tobytes())
        self._index.extend(self._rows)
        self.n += n
        self._pending, self._rows = [], []

    def finish(self) -> Sketches:
        import numpy as np

        self._flush()
        self._buffer = None
        self.keys = np.frombuffer(self._keys, dtype=np.uint32).reshape(-1, self.bands)
        self.sigs = np.frombuffer(self._sigs, dtype=np.uint8).reshape(-1, self.num_perm)
        self.index = np.frombuffer(self._index, dtype=np.int64)
        if self._spill is not None:
            self._spill.flush()
        return self

    def shingles_of(self, pos: int) -> np.ndarray:
        """The distinct shingle hashes of signature ``pos`` (sorted), read back from the spill file."""
        import numpy as np

        found = self._cache.get(pos)
        if found is None:
            start, end = self._starts[pos], self._starts[pos + 1]
            self._spill.seek(start * 4)
            found = np.unique(np.frombuffer(self._spill.read((end - start) * 4), dtype=np.uint32))
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[pos] = found
        return found

    def close(self) -> None:
        """Delete the spill file (also done when the object is garbage-collected)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self._cache = {}


def candidate_threshold(threshold: float) -> float:
    """The threshold the LSH bands are built for: below the reporting ``threshold``, so that pairs at it
    are candidates with a probability of about 99.9 % (0.88 with bands built for the threshold itself);
    every candidate is then checked exactly."""
    return max(0.2, threshold - 0.15)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity of two sorted arrays of distinct values."""
    import numpy as np

    both = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - both
    return both / union if union else 1.0


def _confirm(
    sa: Sketches, sb: Sketches, i: np.ndarray, j: np.ndarray, threshold: float
) -> list[tuple[int, int]]:
    """The candidate pairs (positions ``i`` in ``sa``, ``j`` in ``sb``) whose shingle sets are at least
    ``threshold`` similar. A pair whose MinHash estimate is far below (more than four standard deviations
    for 64 permutations) is dropped without reading its shingles."""
    assert sa.sigs is not None and sb.sigs is not None
    estimate = (sa.sigs[i] == sb.sigs[j]).mean(axis=1)
    keep = estimate >= threshold - ESTIMATE_MARGIN
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for x, y in zip(i[keep].tolist(), j[keep].tolist(), strict=True):
        if (x, y) in seen:
            continue
        seen.add((x, y))
        if jaccard(sa.shingles_of(x), sb.shingles_of(y)) >= threshold:
            out.append((x, y))
    return out


def similar_pairs(s: Sketches, *, max_run: int = 64) -> list[tuple[int, int]]:
    """Pairs of rows (example positions) whose texts are at least ``s.threshold`` similar (the Jaccard
    similarity of their sets of word 3-shingles, computed exactly for every candidate the bands propose).

    Within each band, examples with the same key are candidates: each is compared with the first of its
    run and with its neighbour in the run (at most ``max_run`` neighbours per run), which connects every
    group of near duplicates without comparing all pairs.
    """
    import numpy as np

    assert s.keys is not None and s.sigs is not None and s.index is not None
    found: set[tuple[int, int]] = set()
    checked: set[tuple[int, int]] = set()  # position pairs already compared (in an earlier band)
    n = len(s.index)
    if n < 2:
        return []
    for band in range(s.bands):
        col = s.keys[:, band]
        order = np.argsort(col, kind="stable")
        sorted_keys = col[order]
        same = sorted_keys[1:] == sorted_keys[:-1]
        if not same.any():
            continue
        # run starts: positions where a run of equal keys begins
        run_start = np.concatenate(([True], ~same))
        run_id = np.cumsum(run_start) - 1
        first_of_run = np.flatnonzero(run_start)[run_id]
        member = np.flatnonzero(~run_start)  # every position that is not the first of its run
        offset = member - first_of_run[member]
        left = np.concatenate((first_of_run[member], (member - 1)[(offset > 1) & (offset <= max_run)]))
        right = np.concatenate((member, member[(offset > 1) & (offset <= max_run)]))
        i, j = order[left], order[right]
        i, j = np.minimum(i, j), np.maximum(i, j)
        new = [(x, y) for x, y in zip(i.tolist(), j.tolist(), strict=True) if (x, y) not in checked]
        if not new:
            continue
        checked.update(new)
        pi, pj = np.array(new, dtype=np.int64).T
        for x, y in _confirm(s, s, pi, pj, s.threshold):
            rx, ry = int(s.index[x]), int(s.index[y])
            found.add((min(rx, ry), max(rx, ry)))
    return sorted(found)


def cross_pairs(test: Sketches, train: Sketches, *, per_key: int = 16) -> list[tuple[int, int]]:
    """(test row, train row) pairs at least ``train.threshold`` similar (exactly, as in
    :func:`similar_pairs`): each test example is
    compared with up to ``per_key`` training examples that share one of its band keys."""
    import numpy as np

    assert train.keys is not None and train.sigs is not None and train.index is not None
    assert test.keys is not None and test.sigs is not None and test.index is not None
    found: set[tuple[int, int]] = set()
    checked: set[tuple[int, int]] = set()
    if not len(test.index) or not len(train.index):
        return []
    for band in range(train.bands):
        col = train.keys[:, band]
        order = np.argsort(col, kind="stable")
        sorted_keys = col[order]
        q = test.keys[:, band]
        lo = np.searchsorted(sorted_keys, q, side="left")
        hi = np.minimum(np.searchsorted(sorted_keys, q, side="right"), lo + per_key)
        counts = hi - lo
        if not counts.any():
            continue
        ti = np.repeat(np.arange(len(q)), counts)
        base = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        tj = order[base + np.arange(counts.sum())]
        new = [(x, y) for x, y in zip(ti.tolist(), tj.tolist(), strict=True) if (x, y) not in checked]
        if not new:
            continue
        checked.update(new)
        pi, pj = np.array(new, dtype=np.int64).T
        for x, y in _confirm(test, train, pi, pj, train.threshold):
            found.add((int(test.index[x]), int(train.index[y])))
    return sorted(found)


def components(n: int, pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Union-find over ``pairs`` of rows in ``range(n)``: row -> the smallest row of its group (only rows
    in some pair appear)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for x, y in pairs:
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
        parent.setdefault(rx, rx)
        parent.setdefault(ry, ry)
    return {x: find(x) for x in list(parent)}
