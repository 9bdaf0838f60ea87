"""The quality pass shares the validator's read; near duplicates are confirmed exactly; the test file is
scanned for secrets too; normalisation's fast path equals the plain definition."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from finetune_wb.validation.quality import check_quality
from finetune_wb.validation.quality.extract import normalise
from finetune_wb.validation.quality.minhash import Sketches, similar_pairs
from finetune_wb.validation.validate import validate_file
from tests.validation.quality import crafted as c

# 30 words; changing one word keeps 25 of the 28 three-word shingles: Jaccard 25 / 31 = 0.806.
LONG = (
    "please read the supplier agreement below and tell me whether the receiving party may share the"
    " confidential pricing schedule with its auditors before the end of the current financial year"
)


def _plain(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aB é\t\n\r\x0b\x0c\x1c\x1f\xa0\u2003\u0085İﬁ")), max_size=14))
def test_normalise_fast_path_equals_the_definition(text: str) -> None:
    assert normalise(text) == _plain(text)


def test_validate_with_quality_reads_the_training_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = c.clean_rows(30)
    rows[5] = rows[2]
    path = c.write(tmp_path / "train.jsonl", rows)
    alone = check_quality(path)
    import finetune_wb.validation.quality.check as check

    def second_read(source: object) -> None:
        raise AssertionError(f"the quality pass read {source} again")

    monkeypatch.setattr(check, "iter_examples", second_read)
    report = validate_file(path, quality=True)
    assert report.quality is not None
    assert report.quality.model_dump() == alone.model_dump()
    assert [f.lines for f in report.quality.findings if f.code == "duplicate"] == [[3, 6]]


@pytest.mark.parametrize(
    ("threshold", "found"), [(0.5, True), (0.8, True), (0.806, True), (0.807, False), (0.9, False)]
)
def test_near_duplicates_are_decided_by_the_exact_similarity(threshold: float, found: bool) -> None:
    """J = 25 / 31 = 0.8065 exactly: found at every threshold up to it, never above it (the MinHash estimate alone
    would decide pairs this close to the threshold by chance)."""
    sketches = Sketches(threshold)
    sketches.add(0, LONG)
    sketches.add(1, LONG.replace("auditors", "lawyers"))
    sketches.add(2, c.filler(7, n=30))
    pairs = similar_pairs(sketches.finish())
    sketches.close()
    assert pairs == ([(0, 1)] if found else [])


def test_many_one_word_variants_are_all_found(tmp_path: Path) -> None:
    """Forty prompts of 30 words, each one word away from the first: every pair with the first is at
    Jaccard 0.806 or more, so all 41 examples are one near-duplicate group at the default threshold."""
    words = LONG.split()
    rows = [c.chat(LONG, "Yes")]
    for i in range(1, 41):
        variant = list(words)
        variant[i % len(words)] = f"changed{i}"
        rows.append(c.chat(" ".join(variant), "Yes"))
    rows += [c.chat(c.filler(i, n=20), "No") for i in range(100, 140)]
    report = check_quality(c.write(tmp_path / "train.jsonl", rows), severity={"label_imbalance": "off"})
    groups = [f.lines for f in report.findings if f.code == "near_duplicate"]
    assert groups == [list(range(1, 42))]


def test_the_test_file_is_scanned_for_secrets_and_personal_data(tmp_path: Path) -> None:
    train = c.write(tmp_path / "train.jsonl", c.clean_rows(30))
    test_rows = [c.chat(c.filler(200 + i), "Billing") for i in range(6)]
    test_rows[2] = c.chat(f"{c.filler(300)} my key is {c.OPENAI_KEY}", "Billing")
    test_rows[4] = c.chat(f"{c.filler(301)} write to {c.EMAIL}", "Billing")
    test = c.write(tmp_path / "test.jsonl", test_rows)
    report = check_quality(train, test)
    by_code = {f.code: f for f in report.findings}
    assert by_code["test_secret"].test_lines == [3] and by_code["test_secret"].lines == []
    assert by_code["test_secret"].severity == "warning" and report.ok  # not uploaded for training
    strict = check_quality(train, test, severity={"test_secret": "error"})
    assert not strict.ok and strict.blocking() == ["test_secret"]
    assert by_code["test_personal_data"].test_lines == [5]
    assert by_code["test_personal_data"].severity == "warning"
    assert "secret" not in report.counts and "personal_data" not in report.counts
    dumped = json.dumps(report.model_dump()) + report.summary() + report._repr_html_()
    assert c.OPENAI_KEY not in dumped and c.EMAIL not in dumped
    assert "test file" in by_code["test_secret"].message
    quiet = check_quality(train, test, severity={"test_secret": "off", "test_personal_data": "off"})
    assert quiet.ok and not {"test_secret", "test_personal_data"} & set(quiet.counts)


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
        ],
        [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}],
        [
            {"role": "developer", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
        ],
        [
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "V"},
        ],
        [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}],
        [{"role": "assistant", "content": "A"}, {"role": "assistant", "content": "B"}],
        [{"role": "user", "content": "U", "name": "x"}, {"role": "assistant", "content": "A"}],
    ],
)
def test_the_shortcut_views_equal_the_general_one(messages: list[dict[str, str]]) -> None:
    from finetune_wb.validation.quality import extract

    fast = extract.view_of({"messages": messages})
    original = extract._canonical_view
    try:
        extract._canonical_view = lambda _messages: None  # type: ignore[assignment]
        loop = extract.view_of({"messages": messages})
        messages_copy = [dict(m) for m in messages]
        messages_copy[0]["extra"] = "forces the general path"
        general = extract.view_of({"messages": [*messages_copy]})
    finally:
        extract._canonical_view = original  # type: ignore[assignment]
    assert fast == loop
    if fast is not None and general is not None:
        assert (fast.prompt, fast.answer, fast.system) == (general.prompt, general.answer, general.system)
