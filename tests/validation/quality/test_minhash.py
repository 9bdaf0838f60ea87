"""The sketch is datasketch's: the same signatures as MinHash.update_batch and the bands of MinHashLSH;
near-duplicate groups keep copies on one side of a split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from finetune_wb.data.build import split_examples
from finetune_wb.validation.quality import check_quality, near_duplicate_groups
from finetune_wb.validation.quality.minhash import (
    WEIGHTS,
    Sketches,
    batch_word_hashes,
    candidate_threshold,
    components,
    fmix32,
    shingle_hashes,
    word_hash,
)
from tests.validation.quality import crafted as c


def _word_hashes(text: str) -> np.ndarray:
    return np.array([word_hash(w) for w in text.split()], dtype=np.uint32)


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_signatures_and_bands_are_datasketchs(threshold: float) -> None:
    texts = [c.filler(i, n=5 + i) for i in range(40)] + ["a b", "one two three"]
    sketches = Sketches(threshold)
    for row, text in enumerate(texts):
        sketches.add(row, text)
    sketches.finish()
    lsh = MinHashLSH(threshold=candidate_threshold(threshold), num_perm=sketches.num_perm, weights=WEIGHTS)
    assert (sketches.bands, sketches.rows) == (lsh.b, lsh.r)
    assert sketches.sigs is not None and sketches.index is not None
    for pos, row in enumerate(sketches.index.tolist()):
        words = _word_hashes(texts[row])
        while len(words) < 3:
            words = np.append(words, np.uint32(len(words)))
        reference = MinHash(num_perm=sketches.num_perm, seed=1, hashfunc=int, scheme="affine32")
        reference.update_batch(shingle_hashes(words).tolist())
        assert np.array_equal(sketches.sigs[pos], (reference.hashvalues & 0xFF).astype(np.uint8))


def test_fmix32_is_the_murmur3_finalizer() -> None:
    from datasketch.minhash import _fmix

    values = np.array([0, 1, 2, 0xDEADBEEF, 0xFFFFFFFF], dtype=np.uint32)
    assert np.array_equal(fmix32(values), _fmix(values, 32))


def test_components_join_chains() -> None:
    assert components(6, [(0, 3), (3, 5), (1, 2)]) == {0: 0, 3: 0, 5: 0, 1: 1, 2: 1}


def test_threshold_decides_what_is_near() -> None:
    base = c.filler(1, n=30)
    words = base.split()
    changed = " ".join(words[:25] + ["changed"] * 5)  # ~64 % of the shingles shared
    rows = [c.chat(base, "Billing"), c.chat(changed, "Billing"), *c.clean_rows(10)[2:]]
    assert check_quality(rows, near_duplicate_threshold=0.9).counts.get("near_duplicate") is None
    assert check_quality(rows, near_duplicate_threshold=0.5).counts["near_duplicate"] == 1


def test_split_keeps_near_duplicate_groups_on_one_side() -> None:
    base = c.filler(700, n=40)
    rows = c.clean_rows(40)
    for k, i in enumerate((3, 9, 15, 21, 27)):  # one group of five near-identical prompts (last word differs)
        rows[i] = c.chat(f"{base} end{k}", "Billing")
    rows[30] = rows[31]  # and an exact pair
    groups = near_duplicate_groups(rows)
    assert len({groups[i] for i in (3, 9, 15, 21, 27)}) == 1 and groups[30] == groups[31]
    assert len(set(groups)) == 40 - 4 - 1
    for seed in range(6):
        train, test = split_examples(rows, train_fraction=0.7, seed=seed, groups=groups)
        assert len(train) + len(test) == 40 and abs(len(train) - 28) <= 5
        report = check_quality(train, test)
        assert "leakage" not in report.counts, (seed, report.summary())
    # without the groups some seed leaks
    leaks = [
        check_quality(*split_examples(rows, train_fraction=0.7, seed=s)).counts.get("leakage", 0)
        for s in range(6)
    ]
    assert any(leaks)


def test_split_groups_validation_and_callable() -> None:
    from finetune_wb.errors import ConfigError

    items = list(range(10))
    with pytest.raises(ConfigError, match="one key per example"):
        split_examples(items, n_train=5, groups=[0, 1])
    train, test = split_examples(items, n_train=6, stratify=False, groups=lambda x: x // 2)
    assert len(train) == 6 and {x // 2 for x in train}.isdisjoint({x // 2 for x in test})
    assert split_examples(items, n_train=6, stratify=False, groups=lambda x: x // 2) == (train, test)


def test_parameters_are_computed_by_datasketch_once_then_read_back(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from finetune_wb._paths import state_dir
    from finetune_wb.validation.quality.minhash import datasketch_params

    first = datasketch_params(0.8)
    assert datasketch_params(0.8) == first  # read back: the same values
    (cached,) = (state_dir() / "quality").glob("minhash-affine32-64-1-0.8-*.json")
    lsh = MinHashLSH(threshold=0.8, num_perm=64, weights=WEIGHTS)
    reference = MinHash(num_perm=64, seed=1, scheme="affine32").permutations
    assert json.loads(cached.read_text()) == {
        "a": reference[0].tolist(),
        "b": reference[1].tolist(),
        "bands": lsh.b,
        "rows": lsh.r,
    }
    assert first[2:] == (lsh.b, lsh.r)
    datasketch_params(candidate_threshold(0.8))  # what check_quality's default threshold bands with
    path = c.write(tmp_path / "t.jsonl", c.clean_rows(12))
    code = (
        "import sys; from finetune_wb.validation.quality import check_quality; "
        f"r = check_quality({str(path)!r}); print('datasketch' in sys.modules, r.n_examples)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert out.stdout.split() == ["False", "12"], out.stderr


def test_batch_word_hashes_equal_word_hash_word_by_word() -> None:
    texts = ["one", "a b", "one two three", "naïve café ünïcode words", "x " * 40 + "y", "ok \udc80 fine"]
    hashes, ends = batch_word_hashes(texts)
    expected: list[int] = []
    for text in texts:
        words = [word_hash(w) for w in text.split(" ")]
        expected += words + list(range(len(words), 3))  # short texts padded to three words
        assert ends[texts.index(text)] == len(expected)
    assert hashes.tolist() == expected


def test_word_hash_is_horner_modulo_2_to_the_32() -> None:
    assert word_hash("") == 0
    assert word_hash("a") == ord("a")
    assert word_hash("ab") == (ord("a") * 0x01000193 + ord("b")) % 2**32
