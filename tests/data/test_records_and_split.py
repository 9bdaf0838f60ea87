from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from finetune_wb.data.build import build_examples, split_examples
from finetune_wb.data.jsonl import load_examples, read_jsonl, write_jsonl
from finetune_wb.data.records import read_records
from finetune_wb.data.template import Template, instruction_from_prompt
from finetune_wb.errors import ConfigError, DataError
from finetune_wb.schema import ChatExample, PreferenceExample

RECORDS = [{"text": f"clause {i}", "answer": "Yes" if i % 4 == 0 else "No", "n": i} for i in range(40)]


def test_template_fields_format_strings_and_literals() -> None:
    t = Template(system="Answer Yes or No.", user="Clause: {text} (#{n})", assistant="answer")
    ex = t.render({"text": "abc", "answer": "Yes", "n": 3})
    assert [m.role for m in ex.messages] == ["system", "user", "assistant"]
    assert ex.messages[0].content == "Answer Yes or No."
    assert ex.messages[1].content == "Clause: abc (#3)"
    assert ex.target == "Yes"


def test_template_without_system() -> None:
    ex = Template().render({"text": "a", "answer": "b"})
    assert [m.role for m in ex.messages] == ["user", "assistant"]


def test_template_errors_name_the_record_and_field() -> None:
    with pytest.raises(DataError, match=r"record 1.*'label'"):
        build_examples([{"text": "a", "label": "x"}, {"text": "b"}], template=Template(assistant="{label}"))
    with pytest.raises(DataError, match="empty"):
        build_examples([{"text": "a", "answer": None}], template=Template(assistant="answer"))
    with pytest.raises(ConfigError):
        build_examples(RECORDS, template="{text}")  # type: ignore[arg-type]


def test_build_from_list_dataframe_dataset_and_datasetdict() -> None:
    import datasets
    import pandas as pd

    t = Template(system="Be brief.")
    expected = build_examples(RECORDS, template=t)
    assert len(expected) == 40
    assert build_examples(pd.DataFrame(RECORDS), template=t) == expected
    ds = datasets.Dataset.from_list(RECORDS)
    assert build_examples(ds, template=t) == expected
    dd = datasets.DatasetDict({"train": ds.select(range(10)), "test": ds.select(range(10, 40))})
    assert build_examples(dd, template=t) == expected
    assert build_examples(dd, template=t, split="test") == expected[10:]
    with pytest.raises(DataError, match="no split"):
        build_examples(dd, template=t, split="validation")


def test_build_from_files(tmp_path: Path) -> None:
    t = Template(system="Be brief.")
    expected = build_examples(RECORDS, template=t)
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert build_examples(jsonl, template=t) == expected
    for suffix, delim in ((".csv", ","), (".tsv", "\t")):
        path = tmp_path / f"r{suffix}"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "answer", "n"], delimiter=delim)
            writer.writeheader()
            writer.writerows(RECORDS)
        assert build_examples(str(path), template=t) == expected
    parquet = tmp_path / "x.parquet"
    parquet.touch()
    with pytest.raises(DataError, match="unsupported"):
        build_examples(parquet, template=t)


def test_legalbench_with_the_seeds_template(legalbench_dir: Path) -> None:
    instruction = instruction_from_prompt(legalbench_dir / "base_prompt.txt")
    assert instruction.startswith("Identify if the clause provides")
    assert "\n" not in instruction
    assert instruction_from_prompt((legalbench_dir / "base_prompt.txt").read_text()) == instruction
    assert instruction_from_prompt(str(legalbench_dir / "base_prompt.txt")) == instruction
    assert instruction_from_prompt("Answer Yes or No. " * 30) == ("Answer Yes or No. " * 30).strip()
    t = Template(system=instruction, user="text", assistant="answer")
    train = build_examples(legalbench_dir / "train.tsv", template=t)
    assert len(train) == 8 and Counter(e.target for e in train) == {"Yes": 4, "No": 4}
    test = build_examples(legalbench_dir / "test.tsv", template=t, quoting=csv.QUOTE_NONE)
    assert len(test) == 109 and Counter(e.target for e in test) == {"Yes": 20, "No": 89}
    everything = build_examples(legalbench_dir / "examples.jsonl", template=t)
    assert len(everything) == 117
    # The JSONL copy and the TSVs hold the same texts (test.tsv needs QUOTE_NONE to keep its quotes).
    assert [e.messages[1].content for e in everything] == [e.messages[1].content for e in train + test]


def test_split_by_count_is_stratified_and_keeps_every_label(legalbench_dir: Path) -> None:
    examples = build_examples(legalbench_dir / "examples.jsonl", template=Template(system="Be brief."))
    train, test = split_examples(examples, n_train=30, seed=42)
    assert len(train) == 30 and len(test) == 87
    assert sorted(map(id, train + test)) == sorted(map(id, examples))
    counts = Counter(e.target for e in train)
    assert counts == {"No": 24, "Yes": 6}  # 24 Yes / 93 No overall -> proportional
    tiny, _ = split_examples(examples, n_train=2, seed=1)
    assert {e.target for e in tiny} == {"Yes", "No"}


def test_split_by_fraction_and_unstratified() -> None:
    examples = build_examples(RECORDS, template=Template())
    train, test = split_examples(examples, train_fraction=0.25, seed=3)
    assert len(train) == 10 and len(test) == 30
    # 10 Yes / 30 No overall -> quotas 2.5 / 7.5; the tie goes to the first label in sorted order
    assert Counter(e.target for e in train) == {"No": 8, "Yes": 2}
    plain_train, plain_test = split_examples(examples, n_train=10, seed=3, stratify=False)
    assert len(plain_train) == 10 and len(plain_test) == 30


def test_split_is_deterministic_and_seed_dependent() -> None:
    examples = build_examples(RECORDS, template=Template())
    a = split_examples(examples, n_train=12, seed=7)
    assert split_examples(examples, n_train=12, seed=7) == a
    assert split_examples(examples, n_train=12, seed=8) != a


def test_split_is_the_same_in_another_process() -> None:
    """Guards against hash randomisation (PYTHONHASHSEED) leaking into the split."""
    code = (
        "from finetune_wb.data import Template, build_examples, split_examples\n"
        "recs=[{'text': f't{i}', 'answer': ['a','b','c'][i % 3]} for i in range(50)]\n"
        "tr, te = split_examples(build_examples(recs, template=Template()), n_train=20, seed=5)\n"
        "print([e.messages[0].content for e in tr])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1
    # pinned: a change of the algorithm changes every user's split, so it must be deliberate
    recs = [{"text": f"t{i}", "answer": ["a", "b", "c"][i % 3]} for i in range(50)]
    train, _ = split_examples(build_examples(recs, template=Template()), n_train=20, seed=5)
    assert outs.pop().strip() == str([e.messages[0].content for e in train])


def test_split_is_pinned_to_literal_values() -> None:
    """The same seed gives the same split on every machine and every version: pinned to literals, so any
    change of the algorithm (or of Python's seeded shuffle) shows up here instead of in users' results."""
    recs = [{"text": f"t{i}", "answer": ["a", "b", "c"][i % 3]} for i in range(50)]
    examples = build_examples(recs, template=Template())
    train, _ = split_examples(examples, n_train=20, seed=5)
    assert [e.messages[0].content for e in train] == [
        "t15", "t18", "t38", "t23", "t7", "t20", "t49", "t31", "t17", "t5",
        "t27", "t6", "t3", "t32", "t12", "t40", "t43", "t42", "t16", "t46",
    ]  # fmt: skip
    train, _ = split_examples(examples, n_train=20, seed=5, stratify=False)
    assert [e.messages[0].content for e in train] == [
        "t11", "t18", "t9", "t37", "t28", "t26", "t42", "t46", "t48", "t38",
        "t21", "t45", "t49", "t31", "t27", "t35", "t17", "t20", "t14", "t19",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_train": 5, "train_fraction": 0.5}, {"n_train": 41}, {"n_train": -1}, {"train_fraction": 1.0}],
)
def test_split_argument_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        split_examples(RECORDS, **kwargs)  # type: ignore[arg-type]


def test_split_with_custom_label_and_dicts() -> None:
    train, test = split_examples(RECORDS, n_train=8, label=lambda r: r["answer"], seed=0)
    assert Counter(r["answer"] for r in train) == {"No": 6, "Yes": 2}
    assert len(test) == 32


def test_write_read_load_round_trip(tmp_path: Path) -> None:
    examples = build_examples(RECORDS[:5], template=Template(system="Sé bref."))
    path = write_jsonl(examples, tmp_path / "sub" / "train.jsonl")
    assert path.exists()
    assert "Sé" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    rows = list(read_jsonl(path))
    assert [n for n, _ in rows] == [1, 2, 3, 4, 5]
    assert load_examples(path) == examples


def test_read_jsonl_streams_with_line_numbers_and_skips_blanks(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    path.write_bytes(b'{"a": 1}\n[2]\n')
    it = read_jsonl(path)
    assert next(it) == (1, {"a": 1})  # lazily: the first row arrives before the bad line is read
    with pytest.raises(DataError, match=r"x\.jsonl:2"):
        next(it)


def test_load_examples_reports_file_and_line(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n"
    )
    with pytest.raises(DataError, match=r"t\.jsonl:2.*finetune-wb validate"):
        load_examples(path)


def test_load_dpo_examples(tmp_path: Path) -> None:
    row = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": "b"}],
    }
    path = write_jsonl([row, row], tmp_path / "dpo.jsonl")
    loaded = load_examples(path)
    assert all(isinstance(e, PreferenceExample) for e in loaded)
    assert not isinstance(loaded[0], ChatExample)


def test_read_records_json_list_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(RECORDS[:3]))
    assert read_records(path) == RECORDS[:3]
    with pytest.raises(DataError, match="does not exist"):
        read_records(tmp_path / "missing.csv")
    path.write_text('[\n {"text": "a"},\n {"text": oops}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.json:3: not valid JSON"):
        read_records(path)
    path.write_text('[{"text": "a"}, "b"]', encoding="utf-8")
    with pytest.raises(DataError, match="item 1 is str"):
        read_records(path)


def test_read_records_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    for suffix, delim in ((".csv", ","), (".tsv", "\t")):
        path = tmp_path / f"bom{suffix}"
        path.write_bytes(f"\ufefftext{delim}answer\nhello{delim}Yes\n".encode())
        assert read_records(path) == [{"text": "hello", "answer": "Yes"}]
    path = tmp_path / "bom.json"
    path.write_bytes('\ufeff[{"text": "hello"}]'.encode())
    assert read_records(path) == [{"text": "hello"}]


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=60),
    data=st.data(),
)
def test_split_properties(labels: list[str], data: st.DataObject) -> None:
    items = [{"id": i, "label": lab} for i, lab in enumerate(labels)]
    n_train = data.draw(st.integers(min_value=0, max_value=len(items)))
    seed = data.draw(st.integers(min_value=0, max_value=10**6))
    train, test = split_examples(items, n_train=n_train, seed=seed, label=lambda r: r["label"])
    assert len(train) == n_train
    assert sorted(r["id"] for r in train + test) == list(range(len(items)))  # a partition
    if n_train >= len(set(labels)):
        assert {r["label"] for r in train} == set(labels)  # every label is trained on
    for lab in set(labels):  # proportional to within one example, beyond the at-least-one rule
        share = n_train * labels.count(lab) / len(labels)
        got = sum(r["label"] == lab for r in train)
        assert got <= max(1, math.ceil(share)) + 1 and got >= math.floor(share) - len(set(labels))


def test_template_rejects_a_misspelt_part() -> None:
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="sytem"):
        Template(sytem="Answer Yes or No.")  # type: ignore[call-arg]
