"""``finetune-wb eval`` against the emulator, configured only through OPENAI_API_KEY / OPENAI_BASE_URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main

CHAT = "/v1/chat/completions"
BASE = "gpt-4o-mini-2024-07-18"
OTHER = "gpt-4.1-nano-2025-04-14"


def write_data(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        ex = {
            "messages": [
                {"role": "user", "content": f"Is clause {i} marked confidential?"},
                {"role": "assistant", "content": "Yes" if i % 2 else "No"},
            ]
        }
        lines.append(json.dumps(ex))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def emulator_env(finetune_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return finetune_emulator


def test_eval_json_output(emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path / "test.jsonl", 6)
    argv = ["eval", "--data", str(data), "--model", BASE, "--model", OTHER, "--json"]
    argv += ["--evaluator", "exact_match", "--evaluator", "classification", "--cache", str(tmp_path / "c.db")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["metrics"]) == {BASE, OTHER}
    assert set(out["metrics"][BASE]) == {"exact_match", "classification"}
    # metrics[model][evaluator] is the headline number; the intervals and details sit in metric_details
    for model in (BASE, OTHER):
        for name in ("exact_match", "classification"):
            value = out["metrics"][model][name]
            assert isinstance(value, float) and 0.0 <= value <= 1.0
            detail = out["metric_details"][model][name]
            assert detail["value"] == value and detail["n"] == 6
            assert detail["ci_low"] <= value <= detail["ci_high"]
        clf = out["metric_details"][model]["classification"]["details"]
        assert out["metrics"][model]["classification"] == clf["accuracy"]
        assert {"macro_f1", "micro_f1", "per_class", "confusion_matrix"} <= set(clf)
    assert len(out["rows"]) == 12
    assert {(r["example_index"], r["model"]) for r in out["rows"]} == {
        (i, m) for i in range(6) for m in (BASE, OTHER)
    }
    for row in out["rows"]:
        assert {"model", "output", "error", "scores"} <= set(row)
        assert row["error"] is None and isinstance(row["output"], str)
        assert set(row["scores"]) == {"exact_match", "classification"}
        assert all(isinstance(v, float) for v in row["scores"].values())
    assert out["comparisons"][0]["test"] == "mcnemar_exact"


def test_eval_evaluator_specs_builtins_with_arguments_and_custom_imports(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_data(tmp_path / "test.jsonl", 4)
    (tmp_path / "team_evals.py").write_text(
        "from finetune_wb.evaluation import evaluator\n"
        "@evaluator\n"
        "def short(output: str) -> bool:\n"
        "    return len(output.split()) <= 3\n"
        "def says_yes(output):\n"
        "    return 'yes' in output.lower()\n"
    )
    monkeypatch.chdir(tmp_path)  # MODULE:FUNCTION finds modules in the current directory
    specs = [
        "exact_match:ignore_case=false,name=strict",
        "contains:Yes",
        r"regex:pattern=^(yes|no)\b,ignore_case=true",
        "classification:Yes|No",
        'json_match:{"keys": ["a"]}',
        "json_valid",
        "team_evals:short",
        f"{tmp_path / 'team_evals.py'}:says_yes",
    ]
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-cache", "--json"]
    for spec in specs:
        argv += ["--evaluator", spec]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    info = {e["name"]: e["params"] for e in out["evaluators"]}
    assert list(info) == [
        "strict",
        "contains",
        "regex",
        "classification",
        "json_match",
        "json_valid",
        "short",
        "says_yes",
    ]
    assert info["strict"]["ignore_case"] is False
    assert info["contains"]["text"] == "Yes"
    assert info["regex"] == {"pattern": r"^(yes|no)\b", "ignore_case": True, "fullmatch": False}
    assert info["classification"]["labels"] == ["Yes", "No"]
    assert info["json_match"]["keys"] == ["a"]
    assert set(out["metrics"][BASE]) == set(info)
    assert out["metrics"][BASE]["json_valid"] == 0.0  # the emulator answers in prose


def test_eval_llm_judge_spec_goes_through_the_emulator(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_data(tmp_path / "test.jsonl", 3)
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-cache", "--json"]
    argv += ["--evaluator", f"llm_judge:model={OTHER},max_tokens=40"]
    before = len([e for e in emulator_env.journal if e.path == CHAT])
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evaluators"][0]["params"]["model"] == OTHER
    assert out["evaluators"][0]["params"]["max_tokens"] == 40
    assert len([e for e in emulator_env.journal if e.path == CHAT]) - before == 6  # 3 answers + 3 verdicts
    # the emulator is no grader: without a verdict a row is unscored (null metric), never counted wrong
    assert out["metrics"][BASE]["llm_judge"] is None
    assert all(r["scores"] == {} and "llm_judge" in r["notes"] for r in out["rows"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown evaluator 'nope'"),
        ("regex:patern=x", "has no argument(s) ['patern']"),
        ("exact_match:ignore_case=maybe", "'maybe' is not true/false"),
        ("classification:{bad", "not a JSON object"),
        ("no_such_module_here:fn", "cannot import 'no_such_module_here'"),
        ("missing_file.py:fn", "missing_file.py does not exist"),
        ("json:nothing_called_this", "has no attribute 'nothing_called_this'"),
    ],
)
def test_eval_bad_evaluator_specs_exit_2_before_any_request(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    data = write_data(tmp_path / "test.jsonl", 2)
    before = len(emulator_env.journal)
    assert main(["eval", "--data", str(data), "--model", BASE, "--evaluator", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(emulator_env.journal) == before


def test_eval_exit_code_and_retry_of_unanswered_rows(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = emulator_env
    data = write_data(tmp_path / "test.jsonl", 5)
    emu.inject_fault(path=CHAT, method="POST", status=400, count=2)  # not transient: not retried
    argv = ["eval", "--data", str(data), "--model", BASE, "--cache", str(tmp_path / "c.db"), "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "2 of 5 row(s) unanswered" in captured.err
    assert "HTTP 400" in captured.err  # the first error, so the user knows why
    assert "exact_match" in captured.out
    before = len(emu.journal)
    assert main(argv) == 0  # the same command asks again for the two missing rows only
    assert len([e for e in emu.journal[before:] if e.path == CHAT]) == 2


def test_eval_bad_input(emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path / "missing.jsonl"), "--model", BASE]) == 2
    assert "missing.jsonl does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n{oops\n'
    )
    assert main(["eval", "--data", str(bad), "--model", BASE]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    no_prompt = tmp_path / "no_prompt.jsonl"
    no_prompt.write_text('{"messages": [{"role": "assistant", "content": "Yes"}]}\n')
    assert main(["eval", "--data", str(no_prompt), "--model", BASE]) == 2
    assert "no_prompt.jsonl:1: nothing to ask" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["eval", "--data", str(empty), "--model", BASE]) == 2
    assert "holds no examples" in capsys.readouterr().err
    good = write_data(tmp_path / "good.jsonl", 2)
    for flag in ("--concurrency", "--rpm", "--max-tokens"):
        with pytest.raises(SystemExit) as exited:
            main(["eval", "--data", str(good), "--model", BASE, flag, "0"])
        assert exited.value.code == 2
        assert "must be greater than 0" in capsys.readouterr().err


def test_eval_logs_a_wandb_eval_run(emulator_env: Any, tmp_path: Path) -> None:
    from tests.fakes.wandb_readback import read_runs

    data = write_data(tmp_path / "test.jsonl", 4)
    argv = ["eval", "--data", str(data), "--model", BASE, "--no-cache", "--no-progress"]
    assert main([*argv, "--wandb-project", "cli-eval"]) == 0
    (run,) = read_runs()
    assert run.job_type == "eval"
    assert run.state == "finished"  # the CLI started it, so the CLI finished it
    assert "eval/baseline/exact_match" in run.summary
    assert run.config["models"] == {"baseline": BASE}


def test_eval_cli_reuses_answers_cached_by_the_python_api(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate(..., temperature=0)`` and the CLI's ``--temperature`` default (0.0) are the same request."""
    from finetune_wb.evaluation import evaluate

    data = write_data(tmp_path / "test.jsonl", 3)
    cache = tmp_path / "shared.sqlite3"
    evaluate(data, models=BASE, cache=cache, progress=False, client=emulator_env.client())
    before = len(emulator_env.journal)
    assert main(["eval", "--data", str(data), "--model", BASE, "--cache", str(cache), "--json"]) == 0
    assert [m["n_cached"] for m in json.loads(capsys.readouterr().out)["models"]] == [3]
    assert len(emulator_env.journal) == before


@pytest.mark.parametrize(
    "flags",
    [
        ["--evaluator", "exact_match", "--evaluator", "contains"],
        ["--evaluator", "exact_match", "contains"],
        ["--evaluator", "exact_match,contains"],
    ],
)
def test_eval_several_evaluators_however_they_are_written(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    data = write_data(tmp_path / "test.jsonl", 2)
    argv = ["eval", "--data", str(data), *flags, "--model", BASE, "--json", "--cache", str(tmp_path / "c.db")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["metrics"][BASE]) == ["exact_match", "contains"]


def test_eval_several_models_after_one_flag(
    emulator_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_data(tmp_path / "test.jsonl", 2)
    argv = ["eval", "--data", str(data), "--model", BASE, OTHER, "--json", "--no-cache"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["metrics"]) == [BASE, OTHER] and len(out["rows"]) == 4
    assert [(c["model_a"], c["model_b"]) for c in out["comparisons"]] == [(BASE, OTHER)]
