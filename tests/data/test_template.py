"""A template part that names no field is an error, not the same text in every example (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_wb.data.build import build_examples
from finetune_wb.data.template import Template
from finetune_wb.errors import DataError

RECORDS = [{"text": f"clause {i}", "answer": "Yes" if i % 3 == 0 else "No"} for i in range(12)]


def test_a_misspelt_user_field_is_an_error_naming_the_fields_and_the_fix() -> None:
    with pytest.raises(DataError) as err:
        build_examples(RECORDS, template=Template(user="txt"))
    message = str(err.value)
    assert "record 0" in message and "user part 'txt'" in message
    assert "['answer', 'text']" in message  # the record's fields
    assert "did you mean 'text'" in message
    assert "'literal:txt'" in message  # how to write fixed text on purpose


def test_a_fixed_word_as_the_answer_is_an_error() -> None:
    with pytest.raises(DataError, match=r"assistant part 'Answer'.*did you mean 'answer'"):
        build_examples(RECORDS, template=Template(assistant="Answer"))


def test_user_text_with_spaces_but_no_field_is_an_error_too() -> None:
    with pytest.raises(DataError, match=r"user part 'Classify the clause\.' names no field"):
        build_examples(RECORDS, template=Template(user="Classify the clause."))


def test_a_field_missing_from_a_later_record_is_named_at_that_record() -> None:
    records = [{"txt": "a", "answer": "Yes"}, {"text": "b", "answer": "No"}]
    with pytest.raises(DataError, match=r"record 1: the user part 'txt'.*\['answer', 'text'\]"):
        build_examples(records, template=Template(user="txt"))


def test_a_file_record_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clauses.csv"
    path.write_text("text,answer\nfirst,Yes\nsecond,No\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path.name} record 0: the assistant part 'label'"):
        build_examples(path, template=Template(assistant="label"))


def test_literal_parts_are_spelled_explicitly_and_kept_exactly() -> None:
    from finetune_wb.data.template import LITERAL_PREFIX

    t = Template(
        system='literal:Reply as JSON: {"label": ...}',
        user="literal:Write a short poem.",
        assistant=Template.literal("{answer} stays as typed"),
    )
    ex = t.render(RECORDS[0])
    assert [m.content for m in ex.messages] == [
        'Reply as JSON: {"label": ...}',
        "Write a short poem.",
        "{answer} stays as typed",
    ]
    assert Template.literal("x") == LITERAL_PREFIX + "x" == "literal:x"


def test_a_system_prompt_sentence_is_still_fixed_text() -> None:
    ex = Template(system="Answer Yes or No.", user="text", assistant="answer").render(RECORDS[0])
    assert [m.content for m in ex.messages] == ["Answer Yes or No.", "clause 0", "Yes"]
    ex = Template(system="You label clauses: Yes/No").render(RECORDS[0])
    assert ex.messages[0].content == "You label clauses: Yes/No"


def test_a_system_part_that_is_one_bare_word_must_be_a_field() -> None:
    records = [{"text": "a", "answer": "Yes", "instruction": "Say Yes."}]
    assert Template(system="instruction").render(records[0]).messages[0].content == "Say Yes."
    with pytest.raises(DataError, match=r"system part 'instructions'.*did you mean 'instruction'"):
        Template(system="instructions").render(records[0])
    assert Template(system="literal:Classify").render(records[0]).messages[0].content == "Classify"


def test_format_strings_and_field_names_keep_working() -> None:
    ex = Template(system="Task {answer}?", user="Clause: {text}", assistant="answer").render(RECORDS[1])
    assert [m.content for m in ex.messages] == ["Task No?", "Clause: clause 1", "No"]
    assert Template().render(RECORDS[0]).target == "Yes"


def test_a_lone_brace_is_a_data_error_not_a_crash() -> None:
    with pytest.raises(DataError, match=r"not a valid format string.*literal:Clause \{"):
        Template(user="Clause {").render(RECORDS[0])
    with pytest.raises(DataError, match=r"positional placeholder"):
        Template(user="Clause: {}").render(RECORDS[0])


def test_a_misspelt_field_in_a_run_config_stops_before_any_upload(tmp_path: Path) -> None:
    """The config route (``[template] user = "txt"``) names the file, the key and the record's fields."""
    from finetune_wb.config.model import RunConfig
    from finetune_wb.errors import ConfigError
    from finetune_wb.session.config_runner import run_config

    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text('wandb_mode = "disabled"\n[data]\ndemo = true\n[template]\nuser = "txt"\n')
    with pytest.raises(ConfigError, match=r"run\.toml: template: .*user part 'txt'.*did you mean 'text'"):
        run_config(RunConfig.load(cfg_path), state_path=tmp_path / "s.json")  # conftest: a closed port
