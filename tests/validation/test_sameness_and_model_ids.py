"""Issue 12: the validator warns when every example has the same answer or user text, and when the model id
is not a known one (naming the closest known ids) even though it starts like a known model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.validation import costs
from finetune_wb.validation.validate import validate_examples, validate_file

TYPO = "gpt-4o-mini-2024-07-81"


def chat(user: str, answer: str, system: str = "Answer Yes or No.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def varied(n: int = 12) -> list[dict[str, Any]]:
    return [chat(f"Clause {i}", "Yes" if i % 3 == 0 else "No") for i in range(n)]


def write(tmp_path: Path, examples: list[dict[str, Any]]) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    return path


def codes(report: Any) -> set[str]:
    return {issue.code for issue in report.issues}


def message(report: Any, code: str) -> str:
    return next(issue.message for issue in report.issues if issue.code == code)


# ---- the same text in every example


def test_the_same_answer_in_every_example_is_a_warning(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [chat(f"Clause {i}", "Answer") for i in range(12)]))
    assert codes(report) == {"constant_answer"}
    assert report.ok  # a warning: the file is valid, just useless
    issue = next(i for i in report.issues if i.code == "constant_answer")
    assert issue.severity == "warning" and issue.line is None
    assert "all 12 examples" in issue.message and "'Answer'" in issue.message and "Template" in issue.message


def test_the_same_user_text_in_every_example_is_a_warning(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [chat("txt", "Yes" if i % 2 else "No") for i in range(12)]))
    assert codes(report) == {"constant_user_text"}
    assert "'txt'" in message(report, "constant_user_text")


def test_both_at_once_and_through_the_general_path() -> None:
    # a name on a message takes the example off the fast path; the check is the same there
    examples = [
        {"messages": [{"role": "user", "content": "q", "name": "u"}, {"role": "assistant", "content": "a"}]}
    ] * 11
    assert {"constant_answer", "constant_user_text"} <= codes(validate_examples(examples))


def test_varied_examples_give_no_warning(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, varied()))
    assert report.issues == [], report.summary()


def test_one_differing_example_anywhere_clears_the_warning(tmp_path: Path) -> None:
    examples = [chat(f"Clause {i}", "No") for i in range(30)]
    examples[29] = chat("Clause 29", "Yes")
    assert "constant_answer" not in codes(validate_file(write(tmp_path, examples)))


def test_the_same_system_prompt_is_normal() -> None:
    assert validate_examples(varied()).issues == []


def test_dpo_with_the_same_preferred_output_everywhere() -> None:
    examples = [
        {
            "input": {"messages": [{"role": "user", "content": f"q{i}"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
        }
        for i in range(12)
    ]
    assert codes(validate_examples(examples)) == {"constant_answer"}


def test_a_template_with_a_literal_answer_is_caught_end_to_end() -> None:
    from finetune_wb.data.build import build_examples
    from finetune_wb.data.template import Template

    records = [{"text": f"clause {i}", "answer": "Yes" if i % 2 else "No"} for i in range(12)]
    examples = build_examples(records, template=Template(assistant="literal:Answer"))
    assert "constant_answer" in codes(validate_examples(examples))


def test_the_check_keeps_a_digest_and_a_short_preview_not_the_texts(tmp_path: Path) -> None:
    from finetune_wb.validation.accumulate import SameText

    same = SameText()
    big = "x" * 100_000
    for _ in range(5):
        same.see([big])
    assert same.constant() and len(same.preview) == 60 and len(same.digest or b"") == 16
    assert set(SameText.__slots__) == {"digest", "preview", "same", "n"}  # nothing that grows
    report = validate_file(write(tmp_path, [chat(f"c{i}", big) for i in range(11)]))
    assert "constant_answer" in codes(report)
    assert len(message(report, "constant_answer")) < 600


# ---- model ids


def test_a_mistyped_model_id_warns_and_names_the_closest_known_ids(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, varied()), model=TYPO)
    assert codes(report) == {"unknown_model"}
    text = message(report, "unknown_model")
    assert TYPO in text and "did you mean 'gpt-4o-mini-2024-07-18'" in text
    assert report.ok
    # the figures still follow the family the name starts like
    assert report.tokens.context_limit == 65_536 and report.price_per_million_tokens == 3.0


def test_an_unknown_family_keeps_the_conservative_defaults_and_gets_suggestions(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, varied()), model="gpt4o-mini")
    assert codes(report) == {"unknown_model"}
    assert "did you mean 'gpt-4o-mini'" in message(report, "unknown_model")
    assert report.tokens.context_limit == costs.DEFAULT_CONTEXT_LIMIT


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-mini-2024-07-18",
        "gpt-4.1-nano-2025-04-14",
        "gpt-4o-mini",
        "gpt-35-turbo-0125",
        "o4-mini-2025-04-16",
        "ft:gpt-4o-mini-2024-07-18:acme:contracts:abc123",
        "ft:gpt-3.5-turbo-0125:org::x",
        "GPT-4o-mini-2024-07-18",
    ],
)
def test_known_ids_and_their_fine_tunes_do_not_warn(model: str) -> None:
    assert "unknown_model" not in codes(validate_examples(varied(), model=model))


def test_every_model_in_the_table_and_the_emulator_is_known() -> None:
    from finetune_wb.emulator.state import BASE_MODELS

    assert [m for m in (*costs.KNOWN_MODELS, *BASE_MODELS) if not costs.is_known_model_id(m)] == []


def test_closest_models() -> None:
    assert costs.closest_models(TYPO)[0] == "gpt-4o-mini-2024-07-18"
    assert costs.closest_models("gpt-4.1-mini-2025-04-41")[0] == "gpt-4.1-mini-2025-04-14"
    assert costs.closest_models("my-private-model") == []


def test_cli_validate_with_a_typo_warns_exits_0_and_names_the_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, varied())
    assert main(["validate", str(path), "--model", TYPO]) == 0
    out = capsys.readouterr().out
    assert "unknown_model" in out and "gpt-4o-mini-2024-07-18" in out
    assert main(["validate", str(path), "--model", TYPO, "--json"]) == 0
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [i["code"] for i in issues] == ["unknown_model"]
    assert "gpt-4o-mini-2024-07-18" in issues[0]["message"]
