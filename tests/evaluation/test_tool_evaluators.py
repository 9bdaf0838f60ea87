"""tool_call_match, json_schema, json_fields and preference, scored directly on answers (no server)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import json_fields, json_schema, preference, tool_call_match
from finetune_wb.evaluation.eval_examples import example_from_obj
from finetune_wb.evaluation.evaluators import Score
from finetune_wb.evaluation.resolution import resolve_evaluators
from finetune_wb.evaluation.tool_calls import NO_CALL, render_calls
from tests.evaluation.tool_data import TOOLS, call, dpo_example, tool_example


@dataclass
class Ans:
    output: str = ""
    tool_calls: list[dict[str, str]] | None = field(default=None)


def calls(*pairs: tuple[str, Any]) -> list[dict[str, str]]:
    return [
        {"id": f"c{i}", "name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}
        for i, (n, a) in enumerate(pairs)
    ]


def score(ev: Any, answer: Ans, example: Any) -> Score:
    return asyncio.run(ev.ascore_answer(answer, example))


def ex_with(reference_calls: list[dict[str, Any]]) -> Any:
    return example_from_obj(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and Oslo?"},
                {"role": "assistant", "content": None, "tool_calls": reference_calls},
            ],
            "tools": TOOLS,
        }
    )


def test_exact_arguments_names_and_partial_credit() -> None:
    ev = tool_call_match()
    ref = ex_with([call("get_weather", {"city": "Paris", "unit": "c"})])
    right = score(ev, Ans(tool_calls=calls(("get_weather", '{"unit": "c", "city": "Paris"}'))), ref)
    assert (right.value, right.binary, right.label, right.explanation) == (1.0, True, "get_weather", None)
    wrong_args = score(ev, Ans(tool_calls=calls(("get_weather", {"city": "paris", "unit": "c"}))), ref)
    assert wrong_args.value == 0.0 and '\'city\' is "paris", expected "Paris"' in (
        wrong_args.explanation or ""
    )
    wrong_name = score(ev, Ans(tool_calls=calls(("get_time", {"city": "Paris"}))), ref)
    no_call = score(ev, Ans(output="It is sunny."), ref)
    assert (wrong_name.value, wrong_name.label) == (0.0, "get_time")
    assert (no_call.value, no_call.label, no_call.explanation) == (0.0, NO_CALL, "get_weather: not called")
    details = ev.aggregate([right, wrong_args, wrong_name, no_call], ["", "", "", ""])
    assert details["name_accuracy"] == 0.5  # right and wrong_args called the right function
    assert details["argument_accuracy"] == 0.25
    assert details["per_function"]["get_weather"] == {
        "n": 4,
        "called": 2,
        "arguments_ok": 1,
        "name_accuracy": 0.5,
        "argument_accuracy": 0.25,
    }
    # the confusion table of called names: reference (rows) vs predicted (columns), "no call" last
    assert details["matrix_labels"] == ["get_time", "get_weather", NO_CALL]
    assert details["confusion_matrix"] == [[0, 0, 0], [1, 2, 1], [0, 0, 0]]
    assert details["tables"]["per_function"]["data"] == [["get_weather", 4, 0.5, 0.25]]


def test_subset_and_per_key_normalisation() -> None:
    ref = ex_with([call("get_weather", {"city": "New  York", "days": 3})])
    answer = Ans(tool_calls=calls(("get_weather", {"city": "new york", "days": "3", "unit": "f"})))
    assert score(tool_call_match(), answer, ref).value == 0.0  # exact: the extra key and the case differ
    assert score(tool_call_match(arguments="subset"), answer, ref).value == 0.0  # the case still differs
    loose = tool_call_match(arguments="subset", normalize={"city": ["case", "whitespace"]})
    assert score(loose, answer, ref).value == 1.0  # "3" == 3 (numbers are normalised by default)
    strict_numbers = tool_call_match(
        arguments="subset", normalize_numbers=False, normalize={"city": ["case", "whitespace"]}
    )
    assert score(strict_numbers, answer, ref).value == 0.0
    assert (
        score(
            tool_call_match(arguments="subset", ignore_case=True, normalize_whitespace=True), answer, ref
        ).value
        == 1.0
    )
    with pytest.raises(EvaluationError, match="normalize\\['city'\\] has \\['accents'\\]"):
        tool_call_match(normalize={"city": ["accents"]})
    with pytest.raises(EvaluationError, match="use 'exact' or 'subset'"):
        tool_call_match(arguments="loose")  # type: ignore[arg-type]


def test_parallel_calls_in_any_order_unless_order_matters() -> None:
    ref = ex_with([call("get_weather", {"city": "Paris"}, 1), call("get_weather", {"city": "Oslo"}, 2)])
    swapped = Ans(tool_calls=calls(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Paris"})))
    assert score(tool_call_match(), swapped, ref).value == 1.0
    assert score(tool_call_match(order_insensitive=False), swapped, ref).value == 0.0
    one_missing = score(tool_call_match(), Ans(tool_calls=calls(("get_weather", {"city": "Oslo"}))), ref)
    assert one_missing.value == 0.0 and one_missing.details is not None
    assert [c["arguments_ok"] for c in one_missing.details["calls"]] == [False, True]
    extra = Ans(tool_calls=swapped.tool_calls + calls(("get_time", {"city": "Oslo"})))  # type: ignore[operator]
    assert "beyond the reference" in (score(tool_call_match(), extra, ref).explanation or "")


def test_arguments_that_are_not_json_score_zero_with_the_reason() -> None:
    ref = ex_with([call("get_weather", {"city": "Paris"})])
    broken = score(tool_call_match(), Ans(tool_calls=calls(("get_weather", "{city: Paris"))), ref)
    assert broken.value == 0.0 and broken.label == "get_weather"
    assert "arguments are not JSON" in (broken.explanation or "")
    details = tool_call_match().aggregate([broken], [""])
    assert (details["name_accuracy"], details["argument_accuracy"]) == (1.0, 0.0)


def test_a_text_reference_expects_no_call() -> None:
    text_ref = example_from_obj(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]}
    )
    assert score(tool_call_match(), Ans(output="Hello"), text_ref).value == 1.0
    called = score(tool_call_match(), Ans(tool_calls=calls(("get_time", {}))), text_ref)
    assert called.value == 0.0 and "where the reference answers with text" in (called.explanation or "")


def test_rendering_is_readable() -> None:
    assert render_calls(calls(("get_weather", {"city": "Paris"}))) == 'get_weather({"city": "Paris"})'
    assert render_calls(calls(("f", "not json"), ("g", ""))) == "f(not json)\ng({})"


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}


def test_json_schema_validates_and_explains() -> None:
    ev = json_schema(SCHEMA)
    plain = example_from_obj(
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "{}"}]}
    )
    assert score(ev, Ans(output='```json\n{"name": "Ada", "age": 36}\n```'), plain).value == 1.0
    bad = score(ev, Ans(output='{"name": "Ada", "age": -1}'), plain)
    assert bad.value == 0.0 and "schema violation at age" in (bad.explanation or "")
    assert "not JSON" in (score(ev, Ans(output="Ada, 36"), plain).explanation or "")
    # a tool call's arguments are the JSON when the answer has no text
    assert score(ev, Ans(tool_calls=calls(("save", {"name": "Ada", "age": 3}))), plain).value == 1.0


def test_a_schema_that_is_not_valid_is_an_error_before_anything_runs(tmp_path: Any) -> None:
    with pytest.raises(EvaluationError, match="not a valid JSON Schema at properties/age/type"):
        json_schema({"type": "object", "properties": {"age": {"type": "whole number"}}})
    with pytest.raises(EvaluationError, match="needs a schema"):
        resolve_evaluators(["json_schema"])
    # on the command line: the JSON after the colon is the schema itself; a file path works too
    (ev,) = resolve_evaluators(["json_schema:" + json.dumps(SCHEMA)])
    assert ev.schema == SCHEMA
    path = tmp_path / "schema.json"
    path.write_text('{\n  "type": "object",\n  "required": "name"\n}\n')
    with pytest.raises(EvaluationError, match=f"{path}: not a valid JSON Schema at required"):
        resolve_evaluators([f"json_schema:{path}"])
    path.write_text('{\n  "type": "object",\n  oops\n}\n')
    with pytest.raises(EvaluationError, match=f"{path}:3: not JSON"):
        resolve_evaluators([f"json_schema:{path}"])


def test_json_fields_per_field_accuracy_across_the_set() -> None:
    ev = json_fields()

    def ex(ref: dict[str, Any]) -> Any:
        return example_from_obj(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": json.dumps(ref)},
                ]
            }
        )

    a = score(
        ev,
        Ans(output='{"name": "Ada", "address": {"city": "Paris"}, "age": 36.0}'),
        ex({"name": "Ada", "address": {"city": "Paris"}, "age": 36}),
    )
    b = score(
        ev,
        Ans(output='{"name": "Bob", "address": {"city": "Rome"}}'),
        ex({"name": "Bob", "address": {"city": "Oslo"}, "age": 5}),
    )
    c = score(ev, Ans(output="no json here"), ex({"name": "Cy"}))
    assert (a.value, c.value) == (1.0, 0.0)
    assert b.value == pytest.approx(1 / 3) and b.explanation == "wrong or missing: address.city, age"
    assert "not JSON" in (c.explanation or "")
    details = ev.aggregate([a, b, c], ["", "", ""])
    assert details["per_field"] == {
        "address.city": {"n": 2, "accuracy": 0.5},
        "age": {"n": 2, "accuracy": 0.5},
        "name": {"n": 3, "accuracy": 2 / 3},
    }
    assert details["all_fields_right"] == pytest.approx(1 / 3)
    only_name = json_fields(["name"])
    assert score(only_name, Ans(output='{"name": "Bob"}'), ex({"name": "Bob", "age": 5})).value == 1.0


def test_json_fields_reads_a_tool_call_reference() -> None:
    ref = example_from_obj(tool_example(0, "Paris"))
    got = score(json_fields(), Ans(tool_calls=calls(("get_weather", {"city": "Paris"}))), ref)
    assert got.value == 1.0


def test_preference_wins_losses_and_ties() -> None:
    ev = preference()
    ex = example_from_obj(dpo_example(0))
    win = score(ev, Ans(output="Happy to help with your refund: the steps are these."), ex)
    loss = score(ev, Ans(output="Not my problem."), ex)
    tie = score(ev, Ans(output="Banana"), ex)  # shares no word with either
    assert (win.value, win.binary, win.label) == (1.0, True, "preferred")
    assert (loss.value, loss.label) == (0.0, "non_preferred")
    assert (tie.value, tie.binary, tie.label) == (0.5, False, "tie")
    assert ev.aggregate([win, loss, tie], ["", "", ""]) == {
        "win_rate": 0.5,
        "wins": 1,
        "losses": 1,
        "ties": 1,
    }
    chat = example_from_obj(
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    )
    assert score(ev, Ans(output="y"), chat).value is None  # not a DPO line: not scored, never wrong


def test_a_judge_sees_the_tool_calls_written_out() -> None:
    from finetune_wb.evaluation import llm_judge

    asked: list[str] = []

    class Judge:
        async def complete(self, model: str, messages: list[dict[str, Any]], **kw: Any) -> str:
            asked.append(messages[0]["content"])
            return "VERDICT: PASS"

    ev = llm_judge("Same call?")
    ev.bind(Judge())
    got = score(
        ev,
        Ans(tool_calls=calls(("get_weather", {"city": "Paris"}))),
        example_from_obj(tool_example(0, "Paris")),
    )
    assert got.value == 1.0
    assert 'Reference answer:\nget_weather({"city": "Paris"})' in asked[0]
    assert 'Assistant\'s answer:\nget_weather({"city": "Paris"})' in asked[0]
