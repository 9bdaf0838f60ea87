"""Near-duplicate prompts: MinHash signatures over word 3-shingles, banded the way MinHashLSH bands them.

The sketch is datasketch's: its ``affine32`` MinHash permutations (``MinHash(num_perm, seed).permutations``,
the MurmurHash3 pre-mix, ``a * h + b mod 2**32``) and the band/row split ``MinHashLSH`` picks for the
threshold (``MinHashLSH(threshold, num_perm, weights).b / .r``). What differs is only how it is computed
and stored, because one ``MinHash`` object and one ``MinHashLSH.insert`` per example cost ~45 µs and a
Python set per band key (~390 MB at 200,000 examples): here the permutations are applied to a whole
batch of examples at once with numpy (the signature equals ``MinHash.update_batch``'s; a test checks
it), each example keeps one 64-bit key per band and the low 8 bits of each permutation's minimum (two
sketches agree by chance on 1/256 of them, which raises a similarity estimate by at most 0.4 %), and the band keys are
sorted once at the end to find the candidates, which are then confirmed by their estimated similarity.
"""

from __future__ import annotations

import zlib
from array import array
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 64
SEED = 1
WEIGHTS = (0.1, 0.9)  # false positives cost one comparison; a missed near duplicate costs a wasted job
BATCH = 512  # examples per numpy batch: ~6 MB of temporaries at 45 shingles each
_P1, _P2 = 0x9E3779B1, 0x85EBCA77
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


class Sketches:
    """Signatures of many texts, added one at a time and computed a batch at a time."""

    def __init__(self, threshold: float, *, num_perm: int = NUM_PERM) -> None:
        import numpy as np

        self.threshold = threshold
        a, b, self.bands, self.rows = datasketch_params(threshold, num_perm)
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)
        self.num_perm = num_perm
        self._words: dict[str, int] = {}
        self._pending = array("I")
        self._ends: list[int] = []
        self._rows: list[int] = []
        self.n = 0
        # growing flat buffers (no copy at the end): band keys, 8 bits per permutation, rows
        self._keys = array("Q")
        self._sigs = array("B")
        self._index = array("q")
        self.keys: np.ndarray | None = None
        self.sigs: np.ndarray | None = None
        self.index: np.ndarray | None = None  # row (example position) of each signature

    def add(self, row: int, words: list[str]) -> None:
        """Sketch the (normalised) words of example ``row``; an empty text gets no signature."""
        if not words:
            return
        cache = self._words
        hashes: list[Any] = list(map(cache.get, words))  # a C loop; the vocabulary is soon known
        if None in hashes:
            if len(cache) > 500_000:
                cache.clear()
            for i, (w, h) in enumerate(zip(words, hashes, strict=True)):
                if h is None:
                    hashes[i] = cache[w] = zlib.crc32(w.encode("utf-8", "surrogatepass"))
        while len(hashes) < 3:
            hashes.append(len(hashes))
        self._pending.extend(hashes)
        self._ends.append(len(self._pending))
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        import numpy as np

        if not self._rows:
            return
        w = np.frombuffer(self._pending, dtype=np.uint32)
        ends = np.asarray(self._ends, dtype=np.int64)
        starts = np.concatenate(([0], ends[:-1]))
        shingles = shingle_hashes(w)  # shingles spanning two examples are dropped below
        counts = ends - starts - 2
        pos = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(
            counts.sum()
        )
        hv = fmix32(shingles[pos])
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        # (num_perm, shingles): the reduction runs along contiguous memory (15x faster than axis 0)
        permuted = np.multiply.outer(self.a, hv)
        permuted += self.b[:, None]
        sig = np.minimum.reduceat(permuted, first, axis=1).T
        keys = np.empty((len(self._rows), self.bands), dtype=np.uint64)
        for band in range(self.bands):
            k = np.zeros(len(self._rows), dtype=np.uint64)
            for j in range(band * self.rows, (band + 1) * self.rows):
                k = k * np.uint64(0x100000001B3) ^ sig[:, j].astype(np.uint64)
            keys[:, band] = k
        self._keys.frombytes(keys.tobytes())
        self._sigs.frombytes((sig & np.uint32(0xFF)).astype(np.uint8).tobytes())
        self._index.extend(self._rows)
        self.n += len(self._rows)
        self._pending = array("I")
        self._ends, self._rows = [], []

    def finish(self) -> Sketches:
        import numpy as np

        self._flush()
        self._words = {}
        self.keys = np.frombuffer(self._keys, dtype=np.uint64).reshape(-1, self.bands)
        self.sigs = np.frombuffer(self._sigs, dtype=np.uint8).reshape(-1, self.num_perm)
        self.index = np.frombuffer(self._index, dtype=np.int64)
        return self


def _similar(
    sigs_a: np.ndarray, sigs_b: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float
) -> np.ndarray:
    return (sigs_a[i] == sigs_b[j]).mean(axis=1) >= threshold  # type: ignore[no-any-return]


def similar_pairs(s: Sketches, *, max_run: int = 64) -> list[tuple[int, int]]:
    """Pairs of rows (example positions) whose texts are estimated at least ``s.threshold`` similar.

    Within each band, examples with the same key are candidates: each is compared with the first of its
    run and with its neighbour in the run (at most ``max_run`` neighbours per run), which connects every
    group of near duplicates without comparing all pairs.
    """
    import numpy as np

    assert s.keys is not None and s.sigs is not None and s.index is not None
    found: set[tuple[int, int]] = set()
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
        ok = _similar(s.sigs, s.sigs, i, j, s.threshold)
        for x, y in zip(s.index[i[ok]].tolist(), s.index[j[ok]].tolist(), strict=True):
            found.add((min(x, y), max(x, y)))
    return sorted(found)


def cross_pairs(test: Sketches, train: Sketches, *, per_key: int = 16) -> list[tuple[int, int]]:
    """(test row, train row) pairs estimated at least ``train.threshold`` similar: each test example is
    compared with up to ``per_key`` training examples that share one of its band keys."""
    import numpy as np

    assert train.keys is not None and train.sigs is not None and train.index is not None
    assert test.keys is not None and test.sigs is not None and test.index is not None
    found: set[tuple[int, int]] = set()
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
        ok = _similar(test.sigs, train.sigs, ti, tj, train.threshold)
        for x, y in zip(test.index[ti[ok]].tolist(), train.index[tj[ok]].tolist(), strict=True):
            found.add((x, y))
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
