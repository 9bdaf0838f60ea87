"""Property-based: no input, however broken, makes the validator raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from finetune_wb.validation.validate import ValidationReport, validate_examples, validate_file

KEYS = [
    "messages",
    "role",
    "content",
    "name",
    "weight",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "type",
    "function",
    "arguments",
    "id",
    "text",
    "image_url",
    "url",
    "input",
    "preferred_output",
    "non_preferred_output",
    "tools",
    "parallel_tool_calls",
    "x",
]
ROLES = ["system", "user", "assistant", "tool", "function", "developer", "robot"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(ROLES),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=25,
)
# Values shaped like examples, so that the deeper checks are reached, not only "not an object".
messages = st.lists(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)
    | st.fixed_dictionaries({"role": st.sampled_from(ROLES), "content": json_values}),
    max_size=5,
)
example_like = st.one_of(
    json_values,
    st.fixed_dictionaries({"messages": messages}, optional={"tools": json_values, "x": json_values}),
    st.fixed_dictionaries(
        {"input": st.fixed_dictionaries({"messages": messages}) | json_values},
        optional={"preferred_output": messages | json_values, "non_preferred_output": messages},
    ),
)


def assert_sane(report: ValidationReport) -> None:
    assert isinstance(report, ValidationReport)
    assert "internal_error" not in report.issue_counts, [str(i) for i in report.issues]
    report.summary()
    report._repr_html_()
    json.dumps(report.model_dump(mode="json"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    assert_sane(validate_file(path))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400).map(lambda b: b.replace(b"\x00", b"")))
def test_random_bytes_without_nul_reach_the_line_parser_and_never_raise(tmp_path: Path, data: bytes) -> None:
    # A NUL byte makes the whole file "not UTF-8 text" before any line is parsed, so without this variant
    # random bytes would seldom reach the per-line checks.
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    report = validate_file(path)
    assert_sane(report)
    assert report.unreadable == ("file_unreadable" in report.issue_counts)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(example_like, max_size=6), method=st.sampled_from([None, "supervised", "dpo"]))
def test_random_json_lines_never_raise(tmp_path: Path, lines: list[Any], method: str | None) -> None:
    path = tmp_path / "random.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    report = validate_file(path, method=method)
    assert_sane(report)
    assert report.n_examples == len(lines)


@settings(max_examples=100, deadline=None)
@given(examples=st.lists(example_like, max_size=6))
def test_random_in_memory_examples_never_raise(examples: list[Any]) -> None:
    assert_sane(validate_examples(examples))


# Near-valid chat examples: valid often enough that both outcomes are exercised.
IDS = st.sampled_from(["c1", "c2"])
text_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=5)})
image_part = st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.just("https://x/y.png")})}
)
tool_call = st.fixed_dictionaries(
    {
        "id": IDS,
        "type": st.sampled_from(["function", "function", "other"]),
        "function": st.fixed_dictionaries(
            {"name": st.just("f"), "arguments": st.sampled_from(["{}", '{"a": 1}', "{", "[1]"])}
        ),
    }
)
near_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from([*ROLES[:6], "assistant", "user"]),
        "content": st.one_of(
            st.text(max_size=8), st.none(), st.lists(st.one_of(text_part, image_part), max_size=2)
        ),
    },
    optional={
        "weight": st.sampled_from([0, 1, 2, True]),
        "name": st.text(min_size=1, max_size=4),
        "tool_calls": st.lists(tool_call, min_size=1, max_size=2),
        "tool_call_id": IDS,
    },
)
near_chat = st.fixed_dictionaries(
    {"messages": st.lists(near_message, min_size=1, max_size=4)},
    optional={"tools": st.just([{"type": "function", "function": {"name": "f"}}])},
)


@settings(max_examples=300, deadline=None)
@given(example=near_chat)
def test_validator_and_schema_agree_on_chat_examples(example: dict[str, Any]) -> None:
    """An example the validator finds no error in is exactly one ChatExample accepts (unknown top-level
    keys, which the model forbids but the validator only warns about, are not generated here)."""
    from pydantic import ValidationError

    from finetune_wb.schema import ChatExample

    try:
        ChatExample.model_validate(example)
        schema_ok = True
    except ValidationError:
        schema_ok = False
    report = validate_examples([example])
    line_errors = [i.code for i in report.issues if i.line is not None and i.severity == "error"]
    assert schema_ok == (not line_errors), (schema_ok, line_errors)


near_dpo = st.fixed_dictionaries(
    {
        "input": st.fixed_dictionaries({"messages": st.lists(near_message, min_size=1, max_size=3)}),
        "preferred_output": st.lists(near_message, min_size=1, max_size=2),
        "non_preferred_output": st.lists(near_message, min_size=1, max_size=2),
    }
)


@settings(max_examples=300, deadline=None)
@given(example=near_dpo)
def test_validator_and_schema_agree_on_dpo_examples(example: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from finetune_wb.schema import PreferenceExample

    try:
        PreferenceExample.model_validate(example)
        schema_ok = True
    except ValidationError:
        schema_ok = False
    report = validate_examples([example])
    line_errors = [i.code for i in report.issues if i.line is not None and i.severity == "error"]
    assert schema_ok == (not line_errors), (schema_ok, line_errors)
