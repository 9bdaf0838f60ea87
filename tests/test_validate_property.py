"""Property-based: no input, however broken, makes the validator raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_wb.validate import ValidationReport, validate_examples, validate_file

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
