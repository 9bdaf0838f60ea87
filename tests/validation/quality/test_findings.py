"""Every finding of check_quality on crafted files, with its exact lines (train and test)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.errors import ConfigError
from finetune_wb.validation.quality import check_quality
from tests.validation.quality import crafted as c

BASE = (
    "please read the supplier agreement below and tell me whether the receiving party may share the"
    " confidential pricing schedule with its auditors before the end of the current financial year"
)


def _train_rows() -> list[dict[str, Any]]:
    rows = c.clean_rows(30)
    rows[4] = rows[1]  # line 5: the same as line 2
    rows[7] = c.chat(
        "  " + rows[1]["messages"][1]["content"].upper() + " ", "Shipping"
    )  # line 8: same, normalised
    rows[10] = c.chat(c.filler(100), "Billing")  # lines 11 and 12: one prompt, two answers
    rows[11] = c.chat(c.filler(100), "Shipping")
    rows[13] = c.chat(BASE, "Technical")  # lines 14 and 15: nearly the same prompt
    rows[14] = c.chat(BASE.replace("auditors", "lawyers"), "Technical")
    rows[2] = c.chat(  # line 3: look-alikes that are not findings
        f"{c.filler(3)} card 4539 1488 0343 6468 mail help@example.com iban DE89 3704 0044 0532 0130 01"
        " sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "Billing",
    )
    secrets = [
        f"my key is {c.OPENAI_KEY}",
        f"aws {c.AWS_KEY}",
        f"token {c.GITHUB_TOKEN}",
        f"slack {c.SLACK_TOKEN}",
        f"auth {c.JWT}",
        f"password: {c.PASSWORD}",
        f"blob {c.HIGH_ENTROPY} end",
        f"write to {c.EMAIL}",
        f"call {c.PHONE} now",
        f"card {c.CARD} iban {c.IBAN}",
    ]
    for k, text in enumerate(secrets):  # lines 21-30
        rows[20 + k] = c.chat(
            f"{c.filler(20 + k)} {text}", ("Billing", "Shipping", "Technical")[(20 + k) % 3]
        )
    return rows


def _test_rows() -> list[dict[str, Any]]:
    return [
        c.chat(c.filler(19), "Technical"),  # test line 1: the prompt of train line 20
        c.chat(BASE.replace("auditors", "advisers"), "Technical"),  # test line 2: nearly train lines 14/15
        c.chat(c.filler(500), "Refund"),  # test line 3: a label no training example has
    ]


@pytest.fixture
def report(tmp_path: Path) -> Any:
    train = c.write(tmp_path / "train.jsonl", _train_rows())
    test = c.write(tmp_path / "test.jsonl", _test_rows())
    return check_quality(train, test)


def _by_code(report: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in report.findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_duplicates_conflicts_and_near_duplicates_by_line(report: Any) -> None:
    found = _by_code(report)
    assert [f.lines for f in found["duplicate"]] == [[2, 5, 8]]
    assert [f.lines for f in found["conflicting_answers"]] == [[11, 12]]
    assert [f.lines for f in found["near_duplicate"]] == [[14, 15]]
    assert all(f.severity == "warning" for code in ("duplicate", "near_duplicate") for f in found[code])
    assert "3 examples are the same" in found["duplicate"][0].message
    assert "keep one (line 2)" in found["duplicate"][0].message


def test_leakage_exact_and_near_by_line_in_both_files(report: Any) -> None:
    leaks = _by_code(report)["leakage"]
    assert [(f.lines, f.test_lines) for f in leaks] == [([20], [1]), ([14, 15], [2])]
    assert all(f.severity == "error" for f in leaks)
    assert "the same prompt as training line 20" in leaks[0].message
    assert "nearly the same prompt" in leaks[1].message
    assert report.counts["leakage"] == 2 and not report.ok


def test_unseen_label_and_label_distribution(report: Any) -> None:
    unseen = _by_code(report)["unseen_label"]
    assert [(f.lines, f.test_lines) for f in unseen] == [([], [3])]
    assert "'refund'" in unseen[0].message
    assert set(report.labels) == {"billing", "shipping", "technical"}
    assert sum(report.labels.values()) == 30


def test_secrets_and_personal_data_by_line_and_kind(report: Any) -> None:
    found = _by_code(report)
    secrets = {f.lines[0]: f for f in found["secret"]}
    assert sorted(secrets) == [21, 22, 23, 24, 25, 26, 27]
    for line, what in zip(
        range(21, 28),
        [
            "OpenAI API key",
            "AWS access key",
            "GitHub token",
            "Slack token",
            "JSON Web Token",
            "password",
            "high-entropy",
        ],
        strict=True,
    ):
        assert what in secrets[line].message and "in message 1" in secrets[line].message
        assert secrets[line].severity == "error"
    personal = {f.lines[0]: f for f in found["personal_data"]}
    assert sorted(personal) == [28, 29, 30]
    assert "e-mail" in personal[28].message and "phone" in personal[29].message
    assert "Luhn" in personal[30].message and "IBAN" in personal[30].message
    assert all(f.severity == "warning" for f in personal.values())
    assert 3 not in secrets and 3 not in personal  # bad checksums, example.com and a hex digest


def test_label_imbalance(tmp_path: Path) -> None:
    rows = [c.chat(c.filler(i), "Yes" if i not in (4, 17, 25) else "No") for i in range(30)]
    report = check_quality(c.write(tmp_path / "t.jsonl", rows))
    (finding,) = [f for f in report.findings if f.code == "label_imbalance"]
    assert "'yes' is 90%" in finding.message and finding.lines == []
    assert report.labels == {"yes": 27, "no": 3}
    assert check_quality(tmp_path / "t.jsonl", max_label_share=0.95).counts.get("label_imbalance") is None


def test_answer_length_outliers(tmp_path: Path) -> None:
    rows = [c.chat(c.filler(i), f"The ticket is about billing, case {i}.") for i in range(30)]
    rows[6] = c.chat(c.filler(6), "log line " * 300)
    report = check_quality(c.write(tmp_path / "t.jsonl", rows))
    (finding,) = [f for f in report.findings if f.code == "answer_length_outlier"]
    assert finding.lines == [7] and "longer than 5x" in finding.message


def test_dominant_system_prompt(tmp_path: Path) -> None:
    rows = [c.chat(c.filler(i), "Billing", system="You sort tickets.") for i in range(30)]
    rows[3] = c.chat(c.filler(3), "Billing", system="You are a pirate who sorts tickets.")
    rows[8] = c.chat(c.filler(8), "Billing", system="You are a pirate who sorts tickets.")
    report = check_quality(c.write(tmp_path / "t.jsonl", rows))
    (finding,) = [f for f in report.findings if f.code == "dominant_system_prompt"]
    assert finding.lines == [4, 9] and "93%" in finding.message


def test_clean_file_has_no_findings(tmp_path: Path) -> None:
    report = check_quality(c.write(tmp_path / "t.jsonl", c.clean_rows(30)))
    assert report.findings == [] and report.counts == {} and report.ok
    assert "No findings." in report.summary()


def test_examples_in_memory_give_the_same_findings(tmp_path: Path) -> None:
    rows, test = _train_rows(), _test_rows()
    from_file = check_quality(c.write(tmp_path / "a.jsonl", rows), c.write(tmp_path / "b.jsonl", test))
    in_memory = check_quality(rows, test)
    assert in_memory.findings == from_file.findings and in_memory.path is None


def test_dpo_examples_compare_prompt_and_preferred_output(tmp_path: Path) -> None:
    def dpo(user: str, good: str) -> dict[str, Any]:
        return {
            "input": {"messages": [{"role": "user", "content": user}]},
            "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": "meh"}],
        }

    rows = [dpo(c.filler(i), f"answer {i}") for i in range(12)]
    rows[5] = rows[2]
    rows[9] = dpo(c.filler(9) + f" key {c.OPENAI_KEY}", "answer 9")
    report = check_quality(c.write(tmp_path / "d.jsonl", rows))
    assert [(f.code, f.lines) for f in report.findings] == [("secret", [10]), ("duplicate", [3, 6])]
    assert report.labels is None  # every preferred answer differs: not labels


def test_severity_allow_list_and_caps(tmp_path: Path) -> None:
    train = c.write(tmp_path / "train.jsonl", _train_rows())
    test = c.write(tmp_path / "test.jsonl", _test_rows())
    report = check_quality(
        train,
        test,
        severity={"personal_data": "error", "secret": "off", "leakage": "warning"},
        allow=[r"^\+44 20"],
    )
    assert "secret" not in report.counts
    assert {f.lines[0] for f in report.findings if f.code == "personal_data"} == {28, 30}
    assert all(f.severity == "error" for f in report.findings if f.code == "personal_data")
    assert all(f.severity == "warning" for f in report.findings if f.code == "leakage")
    near_off = check_quality(train, test, near_leakage_severity="off")
    assert [f.test_lines for f in near_off.findings if f.code == "leakage"] == [[1]]
    capped = check_quality(train, test, max_findings=3)
    assert len(capped.findings) == 3 and capped.n_findings_omitted == sum(capped.counts.values()) - 3
    assert capped.counts["secret"] == 7 and capped.counts["leakage"] == 2


def test_bad_options_and_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    train = c.write(tmp_path / "train.jsonl", c.clean_rows(12))
    with pytest.raises(ConfigError, match="near_duplicate_threshold"):
        check_quality(train, near_duplicate_threshold=1.5)
    with pytest.raises(ConfigError, match="unknown finding code 'dupes'"):
        check_quality(train, severity={"dupes": "off"})
    with pytest.raises(ConfigError, match="must be 'error', 'warning' or 'off'"):
        check_quality(train, severity={"secret": "fatal"})
    with pytest.raises(ConfigError, match="allow pattern"):
        check_quality(train, allow=["(unclosed"])
    with pytest.raises(ConfigError, match=r"missing\.jsonl does not exist"):
        check_quality(train, tmp_path / "missing.jsonl")


def test_without_datasketch_near_checks_say_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "datasketch", None)  # import datasketch -> ImportError
    train = c.write(tmp_path / "train.jsonl", _train_rows())
    with pytest.raises(ConfigError, match=r"pip install 'finetune-wb\[quality\]'"):
        check_quality(train)
    report = check_quality(train, near_duplicates=False)
    assert "near_duplicate" not in report.counts and report.counts["duplicate"] == 1


def test_empty_and_unparsable_files_have_no_findings(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    junk = tmp_path / "junk.jsonl"
    junk.write_text('not json\n[1, 2]\n{"x": 1}\n')
    for report in (check_quality(empty), check_quality(junk, empty), check_quality([])):
        assert report.n_examples == 0 and report.findings == [] and report.ok


def test_html_and_text_name_each_finding(report: Any) -> None:
    page = report._repr_html_()
    assert page.count("<tr>") == len(report.findings) + 1
    assert "<code>leakage</code>" in page and "ERRORS" in page
    text = report.summary(max_findings=2)
    assert f"... and {len(report.findings) - 2} more" in text
