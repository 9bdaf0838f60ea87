"""A tool-calling fine-tune and a DPO data set, each trained and evaluated end to end on the emulator:
through a session (with its W&B eval run read back) and through the CLI (``train`` then ``eval --json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.session.facade import FineTuneSession
from tests.evaluation.tool_data import CITIES, dpo_examples, tool_example, tool_examples, write_jsonl
from tests.fakes.wandb_readback import read_run, run_dirs, staged_file

BASE = "gpt-4o-mini-2024-07-18"
NEW_CITIES = ["Rome", "Lagos", "Perth", "Minsk"]


def _tool_test_set() -> list[dict[str, Any]]:
    """Cities seen in training (the fine-tune knows the call) and new ones (right function, other city)."""
    seen = tool_examples(8)
    new = [tool_example(i, NEW_CITIES[i % 4]) for i in (0, 1, 2, 4)]  # single calls only
    return seen + new


def _eval_run() -> Any:
    runs = [read_run(d) for d in run_dirs(os.environ["WANDB_DIR"])]
    (run,) = [r for r in runs if r.job_type == "eval"]
    return run


def test_a_tool_calling_fine_tune_through_a_session(finetune_emulator: Any, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", tool_examples(16))
    test = write_jsonl(tmp_path / "test.jsonl", _tool_test_set())
    session = FineTuneSession(
        project="tools", state_path=tmp_path / "s.json", client=finetune_emulator.client(), poll_interval=0.05
    )
    session.use_files(train, test)
    # half the test set repeats training prompts on purpose (what the stand-in learnt): the leak is accepted
    session.fine_tune({"model": BASE}, accept_quality={"leakage"})
    assert session.wait(timeout=30).status == "succeeded"
    ft = session.fine_tuned_model
    assert ft is not None
    report = session.evaluate(baselines=BASE, evaluators=["tool_call_match", "json_fields"], concurrency=4)

    tcm = report.metrics[ft]["tool_call_match"]
    assert tcm.value == pytest.approx(8 / 12)  # the 8 seen prompts right; the 4 new cities get a seen city
    assert tcm.details["name_accuracy"] == 1.0  # ... but the right function every time
    assert tcm.details["argument_accuracy"] == pytest.approx(10 / 14)  # 14 reference calls, 4 wrong
    assert set(tcm.details["per_function"]) == {"get_weather", "get_time"}
    assert (
        report.metrics[BASE]["tool_call_match"].value == 0.0
    )  # no tool_choice: a base model answers in words
    assert report.metrics[BASE]["tool_call_match"].details["matrix_labels"][-1] == "<no call>"
    fields = report.metrics[ft]["json_fields"]
    assert fields.details["per_field"]["city"] == {"n": 10, "accuracy": 0.6}  # single-call rows only
    (cmp,) = [c for c in report.comparisons if c.evaluator == "tool_call_match"]
    assert cmp.test == "mcnemar_exact" and cmp.difference == pytest.approx(8 / 12)
    text = report.summary()
    assert "name accuracy 1.000, argument accuracy 0.714" in text and "field city (n=10)" in text

    run = _eval_run()
    assert run.summary["eval/finetune/tool_call_match/name_accuracy"] == 1.0
    assert run.summary["eval/finetune/tool_call_match/argument_accuracy"] == pytest.approx(10 / 14)
    (logged,) = [a for a in run.artifacts() if "-evalpredictions-" in a["name"]]
    table = json.loads(staged_file(logged, "eval/predictions.table.json").read_text())
    col = {name: i for i, name in enumerate(table["columns"])}
    first_ft = next(r for r in table["data"] if r[col["role"]] == "finetune" and r[col["index"]] == 0)
    assert first_ft[col["output"]] == 'get_weather({"city": "Paris"})'  # readable, not a Python repr
    assert first_ft[col["target"]] == 'get_weather({"city": "Paris"})'
    assert first_ft[col["tool_call_match predicted"]] == "get_weather"
    names = {a["name"] for a in run.artifacts()}
    assert any("per_function" in n for n in names) and any("per_field" in n for n in names)
    assert any("confusion_matrix" in n for n in names)


def test_a_dpo_data_set_through_a_session(finetune_emulator: Any, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", dpo_examples(12))
    test = write_jsonl(tmp_path / "test.jsonl", dpo_examples(18)[6:])  # 6 seen, 6 new customers
    session = FineTuneSession(
        project="dpo", state_path=tmp_path / "s.json", client=finetune_emulator.client(), poll_interval=0.05
    )
    session.use_files(train, test)
    session.fine_tune({"model": BASE, "method": "dpo"}, accept_quality={"leakage"})  # 6 seen on purpose
    assert session.wait(timeout=30).status == "succeeded"
    ft = session.fine_tuned_model
    assert ft is not None
    report = session.evaluate(baselines=BASE, concurrency=4)  # no evaluator named: preference by default
    assert [e.name for e in report.evaluators] == ["preference"]
    win = report.metrics[ft]["preference"]
    assert win.value == 1.0 and win.details == {"win_rate": 1.0, "wins": 12, "losses": 0, "ties": 0}
    base = report.metrics[BASE]["preference"]
    assert (
        base.value is not None and base.value < 0.5 and base.ci_low is not None and base.ci_high is not None
    )
    (cmp,) = report.comparisons  # paired over the lines both answered
    assert cmp.n == 12 and cmp.difference is not None and cmp.difference > 0.5 and cmp.p_value is not None
    assert cmp.p_value < 0.05
    assert _eval_run().summary["eval/finetune/preference/win_rate"] == 1.0


@pytest.fixture
def emulator_env(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def _train(capsys: pytest.CaptureFixture[str], emu: Any, path: Path, *extra: str) -> str:
    code = main(["train", "--model", BASE, "--training-file", str(path), "--wait", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    job_id = out.strip().splitlines()[-1].split()[0]
    return str(emu.client().fine_tuning.jobs.retrieve(job_id).fine_tuned_model)


def test_the_cli_trains_and_evaluates_tool_calls(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ft = _train(capsys, emulator_env, write_jsonl(tmp_path / "train.jsonl", tool_examples(16)))
    test = write_jsonl(tmp_path / "test.jsonl", _tool_test_set())
    argv = ["eval", "--data", str(test), "--model", ft, "--model", BASE, "--evaluator", "tool_call_match"]
    assert main([*argv, "--cache", str(tmp_path / "c.db"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = [r for r in out["rows"] if r["model"] == ft]
    assert out["metrics"][ft]["tool_call_match"] == pytest.approx(
        sum(r["scores"]["tool_call_match"] for r in rows) / len(rows)
    )
    assert rows[0]["tool_calls"] == [{"name": "get_weather", "arguments": json.dumps({"city": CITIES[0]})}]
    assert rows[0]["output"] == "" and rows[0]["finish_reason"] == "tool_calls"
    parallel = rows[3]["tool_calls"]  # the 4th example asks for both functions at once
    assert [c["name"] for c in parallel] == ["get_weather", "get_time"]
    assert all(r["tool_calls"] == [] for r in out["rows"] if r["model"] == BASE)
    details = out["metric_details"][ft]["tool_call_match"]["details"]
    assert details["name_accuracy"] == 1.0 and details["per_function"]["get_time"]["n"] == 5
    # asked to call a tool, the base model does: the first tool, with the city of the prompt
    forced = ["eval", "--data", str(test), "--model", BASE, "--evaluator", "tool_call_match", "--no-cache"]
    assert main([*forced, "--tool-choice", "required", "--json"]) == 0
    base_rows = json.loads(capsys.readouterr().out)["rows"]
    assert base_rows[0]["tool_calls"] == [
        {"name": "get_weather", "arguments": json.dumps({"city": CITIES[0]})}
    ]
    assert base_rows[0]["scores"]["tool_call_match"] == 1.0


def test_the_cli_trains_and_evaluates_a_dpo_file(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ft = _train(
        capsys, emulator_env, write_jsonl(tmp_path / "train.jsonl", dpo_examples(12)), "--method", "dpo"
    )
    data = write_jsonl(tmp_path / "dpo.jsonl", dpo_examples(12))
    argv = ["eval", "--data", str(data), "--model", ft, "--model", BASE, "--no-cache", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in out["evaluators"]] == ["preference"]
    assert out["metrics"][ft]["preference"] == 1.0
    detail = out["metric_details"][BASE]["preference"]
    assert detail["ci_low"] <= detail["value"] <= detail["ci_high"] and detail["details"]["wins"] < 6
    assert out["comparisons"][0]["evaluator"] == "preference" and out["comparisons"][0]["n"] == 12
    # the preference evaluator is replaceable: the preferred output is the reference of any other
    assert main([*argv, "--evaluator", "contains:steps to follow"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"][ft]["contains"] == 1.0
