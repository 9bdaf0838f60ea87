from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiktoken

from finetune_wb.errors import DataValidationError
from finetune_wb.schema import ChatExample
from finetune_wb.validation import costs
from finetune_wb.validation.validate import ValidationReport, validate_examples, validate_file


def good(i: int = 0, answer: str | None = None) -> dict[str, Any]:
    """A plain chat example; the answer alternates Yes/No with ``i`` unless given."""
    return {
        "messages": [
            {"role": "system", "content": "Answer Yes or No."},
            {"role": "user", "content": f"Question number {i}?"},
            {"role": "assistant", "content": answer if answer is not None else ("Yes" if i % 2 else "No")},
        ]
    }


def dpo(i: int = 0) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"q{i}"}]},
        "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }


def write(tmp_path: Path, lines: list[Any], *, name: str = "train.jsonl", pad: int = 10) -> Path:
    """Write ``lines`` (dicts/values are JSON-encoded, str/bytes written raw) then ``pad`` good examples."""
    path = tmp_path / name
    with open(path, "wb") as f:
        for item in [*lines, *(good(100 + i) for i in range(pad))]:
            if isinstance(item, bytes):
                f.write(item)
            elif isinstance(item, str):
                f.write(item.encode())
            else:
                f.write(json.dumps(item).encode())
            f.write(b"\n")
    return path


def codes(report: ValidationReport) -> dict[str, list[int | None]]:
    out: dict[str, list[int | None]] = {}
    for issue in report.issues:
        out.setdefault(issue.code, []).append(issue.line)
    return out


def check(
    tmp_path: Path, line: Any, code: str, *, severity: str = "error", **kwargs: Any
) -> ValidationReport:
    report = validate_file(write(tmp_path, [line]), **kwargs)
    found = codes(report)
    assert code in found, report.summary()
    assert found[code] == [1]
    issue = next(i for i in report.issues if i.code == code)
    assert issue.severity == severity
    assert issue.message
    assert report.ok is (severity != "error" and report.n_errors == 0)
    return report


def test_good_file_is_ok(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []))
    assert report.ok, report.summary()
    assert report.issues == []
    assert report.n_examples == 10
    assert report.format == "chat"


# ---- the seed notebook's checks


def test_data_type(tmp_path: Path) -> None:
    check(tmp_path, [1, 2], "data_type")


def test_message_data_type(tmp_path: Path) -> None:
    check(tmp_path, {"messages": ["hello", {"role": "assistant", "content": "x"}]}, "data_type")


@pytest.mark.parametrize("value", [None, [], "text", {"role": "user"}])
def test_missing_messages_list(tmp_path: Path, value: Any) -> None:
    check(tmp_path, {"messages": value}, "missing_messages_list")


def test_missing_messages_key_entirely(tmp_path: Path) -> None:
    check(tmp_path, {"prompt": "x", "completion": "y"}, "missing_messages_list")


def test_message_missing_key(tmp_path: Path) -> None:
    check(
        tmp_path,
        {"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]},
        "message_missing_key",
    )
    check(
        tmp_path,
        {"messages": [{"content": "hi"}, {"role": "assistant", "content": "x"}]},
        "message_missing_key",
    )


def test_message_unrecognized_key(tmp_path: Path) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi", "mood": "happy"},
            {"role": "assistant", "content": "x"},
        ]
    }
    report = check(tmp_path, line, "message_unrecognized_key")
    assert "mood" in report.issues[0].message


def test_unrecognized_role(tmp_path: Path) -> None:
    check(
        tmp_path,
        {"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        "unrecognized_role",
    )


@pytest.mark.parametrize("content", ["", None, 5, [], {"text": "x"}])
def test_missing_content(tmp_path: Path, content: Any) -> None:
    check(
        tmp_path,
        {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": "x"}]},
        "missing_content",
    )


def test_example_missing_assistant_message(tmp_path: Path) -> None:
    check(tmp_path, {"messages": [{"role": "user", "content": "hi"}]}, "example_missing_assistant_message")


# ---- what the seed cannot see


def test_invalid_json(tmp_path: Path) -> None:
    check(tmp_path, '{"messages": [', "invalid_json")


def test_invalid_utf8(tmp_path: Path) -> None:
    report = check(tmp_path, b'{"messages": "\xff\xfe"}', "invalid_utf8")
    assert "UTF-8" in report.issues[0].message


def test_blank_line_is_a_warning(tmp_path: Path) -> None:
    report = check(tmp_path, "   ", "blank_line", severity="warning")
    assert report.ok
    assert report.n_examples == 10


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = validate_file(path)
    assert report.ok and report.issues == [], report.summary()


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert validate_file(path).issues == []


def call(arguments: Any = '{"x": 1}', id_: str = "c1") -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": "f", "arguments": arguments}}


def test_valid_tool_conversation(tmp_path: Path) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [call()]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"},
            {"role": "assistant", "content": "It is 3."},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "parallel_tool_calls": False,
    }
    assert validate_file(write(tmp_path, [line])).issues == []


@pytest.mark.parametrize("arguments", ["{not json", {"x": 1}, None])
def test_invalid_tool_call_arguments(tmp_path: Path, arguments: Any) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [call(arguments)]},
        ]
    }
    check(tmp_path, line, "invalid_tool_call_arguments")


def test_invalid_function_call_arguments(tmp_path: Path) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{"}},
        ]
    }
    check(tmp_path, line, "invalid_tool_call_arguments")


@pytest.mark.parametrize(
    "tool_calls",
    [
        "nope",
        [{"type": "function"}],
        [{"id": "c1", "type": "other", "function": {"name": "f", "arguments": "{}"}}],
    ],
)
def test_invalid_tool_call(tmp_path: Path, tool_calls: Any) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "x", "tool_calls": tool_calls},
        ]
    }
    check(tmp_path, line, "invalid_tool_call")


@pytest.mark.parametrize("tool_call_id", ["c2", None, ["c1"]])
def test_tool_call_id_mismatch(tmp_path: Path, tool_call_id: Any) -> None:
    tool = {"role": "tool", "content": "3"}
    if tool_call_id is not None:
        tool["tool_call_id"] = tool_call_id
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [call()]},
            tool,
            {"role": "assistant", "content": "x"},
        ]
    }
    check(tmp_path, line, "tool_call_id_mismatch")


@pytest.mark.parametrize("weight", [2, 0.5, True, "1", None])
def test_invalid_weight(tmp_path: Path, weight: Any) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "x", "weight": weight},
        ]
    }
    check(tmp_path, line, "invalid_weight")


def test_weight_on_non_assistant(tmp_path: Path) -> None:
    line = {
        "messages": [{"role": "user", "content": "hi", "weight": 1}, {"role": "assistant", "content": "x"}]
    }
    check(tmp_path, line, "weight_on_non_assistant")


def test_weights_zero_and_one_are_fine_but_all_zero_warns(tmp_path: Path) -> None:
    fine = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b", "weight": 0},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d", "weight": 1},
        ]
    }
    assert validate_file(write(tmp_path, [fine])).issues == []
    nothing = {
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}]
    }
    check(tmp_path, nothing, "no_trained_assistant_message", severity="warning")


def test_image_in_assistant_message(tmp_path: Path) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ok_line = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what?"}, image]},
            {"role": "assistant", "content": "a cat"},
        ]
    }
    assert validate_file(write(tmp_path, [ok_line])).issues == []
    bad = {"messages": [{"role": "user", "content": "draw"}, {"role": "assistant", "content": [image]}]}
    check(tmp_path, bad, "image_in_assistant_message")


@pytest.mark.parametrize(
    "part", [{"type": "audio"}, "text", {"type": "image_url", "image_url": "u"}, {"type": "text", "text": 3}]
)
def test_invalid_content_part(tmp_path: Path, part: Any) -> None:
    line = {"messages": [{"role": "user", "content": [part]}, {"role": "assistant", "content": "x"}]}
    check(tmp_path, line, "invalid_content_part")


@pytest.mark.parametrize(
    "extra", [{"tools": "f"}, {"tools": [1]}, {"functions": {}}, {"parallel_tool_calls": "yes"}]
)
def test_invalid_tools(tmp_path: Path, extra: dict[str, Any]) -> None:
    check(tmp_path, {**good(), **extra}, "invalid_tools")


def test_unrecognized_example_key_is_a_warning(tmp_path: Path) -> None:
    check(tmp_path, {**good(), "id": 7}, "unrecognized_example_key", severity="warning")


# ---- DPO and formats


def test_dpo_file_is_detected(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [dpo(i) for i in range(10)], pad=0))
    assert report.format == "dpo"
    assert report.ok, report.summary()
    assert report.tokens.total > 0


def test_dpo_forced_with_method(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [dpo(i) for i in range(10)], pad=0), method="dpo")
    assert report.format == "dpo" and report.ok


def test_reinforcement_allows_grader_keys_and_no_answer(tmp_path: Path) -> None:
    lines = [{"messages": [{"role": "user", "content": f"q{i}"}], "reference_answer": "4"} for i in range(10)]
    assert validate_file(write(tmp_path, lines, pad=0), method="reinforcement").issues == []
    supervised = validate_file(write(tmp_path, lines, pad=0))
    assert {"example_missing_assistant_message", "unrecognized_example_key"} <= set(supervised.issue_counts)


def test_wrong_format_when_method_forced(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [], pad=10), method="dpo")
    assert report.format == "dpo"
    assert codes(report)["wrong_format"] == list(range(1, 11))


def test_mixed_formats(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [dpo()]))
    assert report.format == "dpo"  # the first line decides
    assert codes(report)["mixed_formats"] == list(range(2, 12))


def test_dpo_missing_input(tmp_path: Path) -> None:
    lines = [
        {
            "preferred_output": [{"role": "assistant", "content": "a"}],
            "non_preferred_output": [{"role": "assistant", "content": "b"}],
        }
    ]
    report = validate_file(write(tmp_path, lines + [dpo(i) for i in range(10)], pad=0))
    assert codes(report)["dpo_missing_input"] == [1]


@pytest.mark.parametrize(
    "output", [[], [{"role": "user", "content": "a"}], [{"role": "assistant", "content": "a"}] * 2, "a"]
)
def test_invalid_preference_output(tmp_path: Path, output: Any) -> None:
    line = {**dpo(), "preferred_output": output}
    report = validate_file(write(tmp_path, [line] + [dpo(i) for i in range(10)], pad=0))
    assert codes(report)["invalid_preference_output"] == [1]


def test_dpo_unknown_input_key_warns(tmp_path: Path) -> None:
    line = {**dpo(), "input": {"messages": [{"role": "user", "content": "q"}], "extra": 1}}
    report = validate_file(write(tmp_path, [line] + [dpo(i) for i in range(10)], pad=0))
    assert codes(report) == {"unrecognized_example_key": [1]}


def test_dpo_input_messages_are_checked(tmp_path: Path) -> None:
    line = {**dpo(), "input": {"messages": [{"role": "robot", "content": "x"}]}}
    report = validate_file(write(tmp_path, [line] + [dpo(i) for i in range(10)], pad=0))
    assert codes(report)["unrecognized_role"] == [1]


# ---- file-level problems


def test_too_few_examples(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [], pad=9))
    assert codes(report) == {"too_few_examples": [None]}
    assert not report.ok


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = validate_file(path)
    assert codes(report) == {"empty_file": [None]}
    assert not report.unreadable


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_file_unreadable(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.jsonl" if kind == "missing" else tmp_path
    report = validate_file(path)
    assert report.unreadable
    assert codes(report) == {"file_unreadable": [None]}
    assert str(path) in report.issues[0].message


def test_over_context_limit_is_reported_by_line(tmp_path: Path) -> None:
    long_line = good(1, answer="word " * 20_000)
    report = validate_file(write(tmp_path, [long_line]), model="gpt-3.5-turbo-0125")
    assert codes(report)["example_too_long"] == [1]
    assert report.tokens.n_over_limit == 1
    assert report.tokens.context_limit == 16_385
    assert report.ok  # truncated in training: a warning
    longest = int(report.tokens.per_example.max)
    assert report.tokens.billed_per_epoch == report.tokens.total - longest + 16_385


def test_unknown_model_warns_and_uses_conservative_defaults(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), model="my-private-model")
    assert codes(report) == {"unknown_model": [None]}
    assert report.ok
    assert report.tokens.context_limit == costs.DEFAULT_CONTEXT_LIMIT
    assert report.tokens.encoding == "o200k_base"
    assert report.estimated_cost_usd is None


def test_over_budget(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    report = validate_file(path, max_cost=1e-9)
    assert codes(report) == {"over_budget": [None]}
    assert not report.ok
    assert validate_file(path, max_cost=100.0).ok


def test_unknown_price_with_max_cost_warns(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), model="my-private-model", max_cost=1.0)
    assert "unknown_price" in codes(report)


def test_issue_list_is_capped_but_everything_is_counted(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, ["nope"] * 30), max_issues=5)
    assert len(report.issues) == 5
    assert report.issue_counts["invalid_json"] == 30
    assert report.n_errors == 30 and report.n_issues_omitted == 25
    assert not report.ok
    assert "more" in report.summary()


def test_never_stops_at_the_first_bad_line(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, ["x", [1], {"messages": []}, "  "]))
    assert codes(report) == {
        "invalid_json": [1],
        "data_type": [2],
        "missing_messages_list": [3],
        "blank_line": [4],
    }


# ---- figures


def seed_tokens(ex: dict[str, Any], enc: tiktoken.Encoding) -> tuple[int, int]:
    total = 3 + sum(3 + sum(len(enc.encode(v)) for v in m.values()) + ("name" in m) for m in ex["messages"])
    assistant = sum(len(enc.encode(m["content"])) for m in ex["messages"] if m["role"] == "assistant")
    return total, assistant


def test_figures_match_the_seed(tmp_path: Path) -> None:
    examples = [good(i, answer="Yes " * (i % 7 + 1)) for i in range(40)]
    report = validate_examples(examples, model="gpt-4o-mini-2024-07-18")
    enc = tiktoken.get_encoding("o200k_base")
    totals = np.array([seed_tokens(e, enc)[0] for e in examples])
    assistant = np.array([seed_tokens(e, enc)[1] for e in examples])
    t = report.tokens
    assert t.total == totals.sum()
    assert t.per_example.min == totals.min() and t.per_example.max == totals.max()
    assert t.per_example.mean == pytest.approx(totals.mean())
    assert t.per_example.median == pytest.approx(np.median(totals))
    assert t.per_example.p5 == pytest.approx(np.percentile(totals, 5))
    assert t.per_example.p95 == pytest.approx(np.percentile(totals, 95))
    assert t.assistant_per_example.p95 == pytest.approx(np.percentile(assistant, 95))
    assert t.messages_per_example.mean == 3
    assert report.n_epochs == 3  # 40 * 3 = 120 >= 100
    assert t.billed == totals.sum() * 3
    assert report.estimated_cost_usd == pytest.approx(t.billed * 3.00 / 1e6)
    overridden = validate_examples(examples, prices={"gpt-4o-mini": 10.0})
    assert overridden.estimated_cost_usd == pytest.approx(t.billed * 10.0 / 1e6)


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (4, 25), (10, 10), (30, 3), (33, 3), (34, 3), (8_333, 3), (8_334, 2), (30_000, 1)],
)
def test_default_epochs_rule(n: int, epochs: int) -> None:
    assert costs.default_epochs(n) == epochs


def test_n_epochs_override(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), n_epochs=2)
    assert report.n_epochs == 2
    assert report.tokens.billed == 2 * report.tokens.billed_per_epoch


def test_context_limits_and_prices_table() -> None:
    assert costs.context_limit("gpt-4o-mini-2024-07-18") == 65_536
    assert costs.context_limit("ft:gpt-3.5-turbo-0125:org::x") == 16_385
    assert costs.context_limit("gpt-3.5-turbo-0613") == 4_096
    assert costs.context_limit("unknown") is None
    assert costs.price_per_million("gpt-4.1-mini-2025-04-14") == 5.0
    assert costs.price_per_million("gpt-4.1-2025-04-14") == 25.0
    assert costs.price_per_million("gpt-4o-mini", prices={"gpt-4o-mini": 1.0}) == 1.0


@pytest.mark.parametrize(
    ("model", "limit", "price"),
    [  # the figures docs/data.md cites from published sources
        ("gpt-4o-mini-2024-07-18", 65_536, 3.00),
        ("gpt-4o-2024-08-06", 65_536, 25.00),
        ("gpt-3.5-turbo-0125", 16_385, 8.00),
        ("gpt-3.5-turbo-1106", 16_385, 8.00),
        ("gpt-3.5-turbo-0613", 4_096, 8.00),
        ("gpt-35-turbo-0125", 16_385, None),  # Azure's spelling: limit known, price is Azure's own
        ("ft:gpt-4o-2024-08-06:acme::abc", 65_536, 25.00),
    ],
)
def test_published_limits_and_prices(model: str, limit: int, price: float | None) -> None:
    assert costs.context_limit(model) == limit
    assert costs.price_per_million(model) == price


def test_azure_model_name_is_not_unknown(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), model="gpt-35-turbo-0125")
    assert report.issues == []
    assert report.tokens.encoding == "cl100k_base" and report.tokens.context_limit == 16_385


# ---- in-memory examples, LegalBench, output


def test_validate_examples_accepts_models_and_dicts() -> None:
    models = [ChatExample.model_validate(good(i)) for i in range(10)]
    report = validate_examples([*models, [1]])
    assert report.n_examples == 11
    assert codes(report) == {"data_type": [11]}


def test_legalbench_file_validates_like_the_seed(tmp_path: Path, legalbench_dir: Path) -> None:
    from finetune_wb.data.build import build_examples
    from finetune_wb.data.jsonl import write_jsonl
    from finetune_wb.data.template import Template, instruction_from_prompt

    template = Template(system=instruction_from_prompt(legalbench_dir / "base_prompt.txt"))
    examples = build_examples(legalbench_dir / "examples.jsonl", template=template)
    path = write_jsonl(examples, tmp_path / "legal.jsonl")
    report = validate_file(path, model="gpt-3.5-turbo-0125")
    assert report.ok and report.issues == []
    assert report.n_examples == 117
    enc = tiktoken.get_encoding("cl100k_base")
    expected = sum(seed_tokens(e.to_openai(), enc)[0] for e in examples)
    assert report.tokens.total == expected
    assert report.n_epochs == 3
    assert report.tokens.billed == expected * 3


def test_missing_system_and_user_counts() -> None:
    no_system = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    no_user = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    report = validate_examples([good(), no_system, no_system, no_user])
    assert (report.n_missing_system, report.n_missing_user) == (2, 1)
    assert "missing a system message: 2    missing a user message: 1" in report.summary()


def test_summary_and_html(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, ["oops", "<b>"]))
    text = report.summary()
    assert "line 1: error: [invalid_json]" in text and "line 2" in text
    assert "epochs" in text and "Estimated training cost" in text
    assert str(report) == text
    html = report._repr_html_()
    assert "<table>" in html and "invalid_json" in html
    escaped = validate_file(write(tmp_path, []), model="<script>")._repr_html_()
    assert "&lt;script&gt;" in escaped and "<script>" not in escaped


def test_raise_for_errors(tmp_path: Path) -> None:
    ok = validate_file(write(tmp_path, []))
    assert ok.raise_for_errors() is ok
    bad = validate_file(write(tmp_path, ["oops"]))
    with pytest.raises(DataValidationError) as info:
        bad.raise_for_errors()
    assert info.value.report is bad
    assert "line 1" in str(info.value) and "train.jsonl" in str(info.value)


def test_json_dump_has_the_cli_keys(tmp_path: Path) -> None:
    data = validate_file(write(tmp_path, [])).model_dump(mode="json")
    for key in ("ok", "n_examples", "issues", "tokens", "n_epochs", "estimated_cost_usd"):
        assert key in data
    assert "billed" in data["tokens"]
    assert data["ok"] is True


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Streaming: peak Python allocations stay far below the file size (here ~9 MB of unique text)."""
    import tracemalloc

    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(12_000):
            f.write(json.dumps(good(i, answer=f"Yes, because of reason {i} " * 20)) + "\n")
    size = path.stat().st_size
    assert size > 8_000_000
    from finetune_wb.validation.tokens import get_encoding

    get_encoding("o200k_base")  # the tokenizer's tables are loaded once and are not part of the question
    tracemalloc.start()
    try:
        report = validate_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.n_examples == report.n_lines == 12_000
    assert peak < size / 3, f"peak {peak:,} bytes for a {size:,}-byte file"


def test_fast_path_counts_equal_the_general_path(legalbench_dir: Path) -> None:
    from finetune_wb.validation.accumulate import Accumulator, IssueCollector
    from finetune_wb.validation.tokens import TokenCounter

    rows = [json.loads(line) for line in (legalbench_dir / "examples.jsonl").read_text().splitlines()]
    examples = [good(i, answer=r["answer"]) for i, r in enumerate(rows)]
    examples += [
        {"messages": [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": "No"}]}
        for r in rows
    ]
    acc = Accumulator(TokenCounter.for_model("gpt-4o-mini"), 65_536)
    general = TokenCounter.for_model("gpt-4o-mini")
    for ex in examples:
        fast = acc.plain_chat(ex)
        assert fast is not None
        assert fast[:3] == general.example_tokens(ex)
    # anything unusual is left to the general path
    assert acc.plain_chat({**good(), "tools": []}) is None
    assert acc.plain_chat({"messages": [{"role": "user", "content": "q"}]}) is None
    assert (
        acc.plain_chat(
            {"messages": [{"role": "tool", "content": "q"}, {"role": "assistant", "content": "a"}]}
        )
        is None
    )
    assert (
        acc.plain_chat({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]})
        is None
    )
    collector = IssueCollector(10)
    acc.add(good(), 1, collector)
    assert list(acc.tokens)[-1] == general.example_tokens(good())[0]


def test_format_detection_after_unrecognized_lines(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, [{"prompt": "x"}, dpo()], pad=10))
    assert report.format == "dpo"
    assert codes(report)["missing_messages_list"] == [1]
    assert codes(report)["mixed_formats"] == list(range(3, 13))


@pytest.mark.parametrize(
    "line",
    ['{"messages": []} x', '{"messages": []}\u00a0', ' {"a": 1} {"b": 2}', "{'a': 1}", '{"a": 1,}', "NaN x"],
)
def test_json_edge_cases_match_json_loads(tmp_path: Path, line: str) -> None:
    try:
        json.loads(line)
        expected = None
    except ValueError:
        expected = "invalid_json"
    report = validate_file(write(tmp_path, [line]))
    assert ("invalid_json" in codes(report)) == (expected == "invalid_json")


def test_leading_and_trailing_whitespace_is_fine(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, ["  " + json.dumps(good()) + " \t"]))
    assert report.issues == []


def test_tokenizer_that_cannot_load_is_a_config_error_not_an_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken.load
    import tiktoken.registry

    from finetune_wb.errors import ConfigError
    from finetune_wb.validation.tokens import get_encoding

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")  # what requests raises without network

    path = write(tmp_path, [])
    get_encoding.cache_clear()
    # Nothing loaded yet in this process, no cached file, no network.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tiktoken.load, "read_file_cached", offline)
    try:
        with pytest.raises(ConfigError, match="TIKTOKEN_CACHE_DIR"):
            validate_file(path)
    finally:
        monkeypatch.undo()
        get_encoding.cache_clear()
    assert validate_file(path).ok


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_epochs": 0},
        {"n_epochs": 51},
        {"n_epochs": True},
        {"n_epochs": "3"},
        {"max_cost": -1.0},
        {"max_cost": float("nan")},
        {"max_issues": -1},
        {"method": "sft"},
    ],
)
def test_bad_options_are_config_errors_before_any_work(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    from finetune_wb.errors import ConfigError

    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=name):
        validate_file(tmp_path / "not-even-there.jsonl", **kwargs)
    with pytest.raises(ConfigError, match=name):
        validate_examples([good()], **kwargs)


def test_over_budget_message_shows_small_amounts(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), max_cost=0.0001)
    (issue,) = report.issues
    assert issue.code == "over_budget"
    assert "over max_cost $0.0001" in issue.message and "$0.00 " not in issue.message
