from __future__ import annotations

from collections import Counter
from pathlib import Path

from finetune_wb.data.demo_dataset import (
    DEMO_N_CLAUSES,
    demo_data_path,
    generate_clauses,
    load_demo_records,
    write_records,
)


def test_shipped_file_is_exactly_the_generator_output(tmp_path: Path) -> None:
    regenerated = write_records(generate_clauses(), tmp_path / "clauses.jsonl")
    assert regenerated.read_bytes() == demo_data_path().read_bytes()


def test_records_are_distinct_labelled_and_balanced_enough() -> None:
    records = load_demo_records()
    assert len(records) == DEMO_N_CLAUSES
    assert all(set(r) == {"text", "answer"} for r in records)
    assert len({r["text"] for r in records}) == len(records)
    counts = Counter(r["answer"] for r in records)
    assert set(counts) == {"Yes", "No"}
    assert counts["Yes"] == 48 and counts["No"] == 72
    # no unfilled template slots, every clause starts with a capital or a clause number
    assert not any("{" in r["text"] for r in records)
    assert all(r["text"][0].isupper() or r["text"][0] in "1234(S" for r in records)


def test_generation_is_seeded() -> None:
    assert generate_clauses(40, seed=1) == generate_clauses(40, seed=1)
    assert generate_clauses(40, seed=1) != generate_clauses(40, seed=2)
    small = generate_clauses(10, seed=3, yes_fraction=0.5)
    assert Counter(r["answer"] for r in small) == {"Yes": 5, "No": 5}
