"""Bad tool / DPO / schema input reported by file and line before any request; multi-turn evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import evaluate
from finetune_wb.evaluation.inputs import load_eval_examples
from tests.evaluation.test_tool_requests import _capturing_client
from tests.evaluation.tool_data import dpo_examples, tool_examples, write_jsonl

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def emulator_env(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def _bad_file(tmp_path: Path, line: dict[str, Any], at: int = 2) -> Path:
    rows = tool_examples(3)
    rows[at - 1] = line
    return write_jsonl(tmp_path / "bad.jsonl", rows)


def test_malformed_tools_are_reported_by_file_and_line(tmp_path: Path) -> None:
    ex = tool_examples(2)[1]
    path = _bad_file(
        tmp_path, {**ex, "tools": [{"type": "function", "function": {"description": "no name"}}]}
    )
    with pytest.raises(
        EvaluationError, match=rf"{path}:2: tools\[0\].function.name: None is not a function name"
    ):
        load_eval_examples(path)
    path = _bad_file(tmp_path, {**ex, "tools": [{"name": "get_weather"}]}, at=3)
    with pytest.raises(EvaluationError, match=rf"{path}:3: tools\[0\]: each tool must be"):
        load_eval_examples(path)
    bad_schema = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "required": 1}},
    }
    path = _bad_file(tmp_path, {**ex, "tools": [bad_schema]})
    with pytest.raises(
        EvaluationError,
        match=r"bad.jsonl:2: tools\[0\].function.parameters: not a valid JSON Schema at required",
    ):
        load_eval_examples(path)
    path = _bad_file(tmp_path, {**ex, "tools": [ex["tools"][0], ex["tools"][0]]})
    with pytest.raises(
        EvaluationError, match=r"bad.jsonl:2: tools: the function name\(s\) \['get_weather'\]"
    ):
        load_eval_examples(path)


def test_reference_arguments_that_are_not_json_are_reported_by_line(tmp_path: Path) -> None:
    ex = json.loads(json.dumps(tool_examples(2)[1]))
    ex["messages"][-1]["tool_calls"][0]["function"]["arguments"] = "{city: Tokyo"
    path = _bad_file(tmp_path, ex)
    with pytest.raises(
        EvaluationError,
        match=rf"{path}:2: not a chat example \(messages.2.tool_calls.0.function.arguments: function arguments "
        "must be a JSON string",
    ):
        load_eval_examples(path)


def test_a_bad_dpo_line_is_named_as_one(tmp_path: Path) -> None:
    rows = dpo_examples(3)
    rows[2] = {**rows[2], "non_preferred_output": []}
    path = write_jsonl(tmp_path / "dpo.jsonl", rows)
    with pytest.raises(
        EvaluationError, match=rf"{path}:3: not a preference \(DPO\) example \(non_preferred_output"
    ):
        load_eval_examples(path)


def test_the_cli_says_so_with_exit_2_and_asks_nothing(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = tool_examples(2)[1]
    bad = _bad_file(tmp_path, {**ex, "tools": "get_weather"})
    assert main(["eval", "--data", str(bad), "--model", BASE, "--no-cache"]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
    good = write_jsonl(tmp_path / "good.jsonl", tool_examples(2))
    schema = json.dumps({"type": "object", "required": "city"})
    argv = [
        "eval",
        "--data",
        str(good),
        "--model",
        BASE,
        "--no-cache",
        "--evaluator",
        f"json_schema:{schema}",
    ]
    assert main(argv) == 2
    assert "not a valid JSON Schema at required" in capsys.readouterr().err
    schema_file = tmp_path / "schema.json"
    schema_file.write_text('{"type": "object", "properties": {"city": {"type": "town"}}}')
    argv = ["eval", "--data", str(good), "--model", BASE, "--no-cache", "--response-format", str(schema_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{schema_file}: not a valid JSON Schema at properties/city/type" in err
    assert (
        main(["eval", "--data", str(good), "--model", BASE, "--no-cache", "--tool-choice", "any tool"]) == 2
    )
    assert not [e for e in emulator_env.journal if e.path == CHAT]


def _two_turns(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Order {i}: where is it?"},
            {"role": "assistant", "content": "In transit."},
            {"role": "user", "content": "When will it arrive?"},
            {"role": "assistant", "content": "Tomorrow."},
        ]
    }


def test_every_turn_with_its_history_reported_per_turn(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    examples = [_two_turns(i) for i in range(3)]
    last = evaluate(examples, models=BASE, client=_capturing_client(bodies), cache=None, progress=False)
    assert len(bodies) == 3 and all(len(b["messages"]) == 4 for b in bodies)  # default: the last turn
    assert last.by_turn == {} and {e.turn for e in last.examples} == {None}
    bodies.clear()
    report = evaluate(
        examples, models=BASE, client=_capturing_client(bodies), cache=None, progress=False, turns="all"
    )
    assert sorted(len(b["messages"]) for b in bodies) == [2, 2, 2, 4, 4, 4]
    assert [(e.source_index, e.turn, e.target) for e in report.examples] == [
        (i, t, target) for i in range(3) for t, target in ((0, "In transit."), (1, "Tomorrow."))
    ]
    assert [r.turn for r in report.rows] == [0, 1] * 3
    per_turn = report.by_turn[BASE]["exact_match"]
    assert set(per_turn) == {"0", "1"} and per_turn["0"]["n"] == per_turn["1"]["n"] == 3
    assert report.params["turns"] == "all"
    assert "turn 0:" in report.summary() and "turn 1:" in report.summary()
