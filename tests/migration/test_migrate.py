"""migrate(): agreement, accuracy, McNemar, latency, cost, ranking, and a recommendation that follows the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.migration import MigrationInputError, migrate, snapshot
from tests.migration.helpers import chat_posts, fine_tune, flipped, write_jsonl, yes_no_examples

DATA = yes_no_examples(40)


@pytest.fixture
def setup(finetune_emulator: Any, tmp_path: Path) -> dict[str, Any]:
    """A golden set of a gpt-4o-mini fine-tune, and two faithful replacements (cheap nano, dear gpt-4.1)."""
    client = finetune_emulator.client()
    ft = fine_tune(client, DATA)[0]
    result = snapshot(
        ft, write_jsonl(tmp_path / "test.jsonl", DATA[:30]), client=client, out=tmp_path / "g.jsonl"
    )
    return {
        "client": client,
        "golden": Path(result.golden_path or ""),
        "train": write_jsonl(tmp_path / "train.jsonl", DATA),
        "cheap": fine_tune(client, DATA, base="gpt-4.1-nano-2025-04-14")[0],
        "dear": fine_tune(client, DATA, base="gpt-4.1-2025-04-14")[0],
    }


def test_recommendation_is_the_cheapest_faithful_candidate_and_changes_when_its_agreement_drops(
    finetune_emulator: Any, setup: dict[str, Any]
) -> None:
    client, golden = setup["client"], setup["golden"]
    report = migrate(golden, [setup["dear"], setup["cheap"], "gpt-4.1-mini"], client=client)
    by = {c.name: c for c in report.candidates}
    assert report.recommendation == setup["cheap"]
    assert [c.name for c in report.candidates] == [setup["cheap"], setup["dear"], "gpt-4.1-mini"]
    cheap = by[setup["cheap"]]
    assert (cheap.agreement, cheap.accuracy, cheap.within_tolerance, cheap.rank) == (1.0, 1.0, True, 1)
    assert (
        cheap.agreement_ci[0] is not None
        and 0.85 < cheap.agreement_ci[0] < 1.0
        and cheap.agreement_ci[1] == 1.0
    )
    assert cheap.p_value == 1.0 and cheap.p_value_test == "mcnemar_accuracy"
    assert (
        cheap.cost_per_1k_requests is not None
        and cheap.cost_per_1k_requests < by[setup["dear"]].cost_per_1k_requests
    )  # type: ignore[operator]
    assert cheap.latency_p50_ms is not None and cheap.latency_p95_ms >= cheap.latency_p50_ms  # type: ignore[operator]
    base = by["gpt-4.1-mini"]  # a base model without the task's knowledge: far from the fine-tune
    assert not base.within_tolerance and base.agreement < 0.5 and base.p_value < 0.05  # type: ignore[operator]
    assert report.fine_tune_accuracy == 1.0 and report.n_references == 30

    # the cheap replacement is now trained on partly wrong data: its agreement drops, the dear one is chosen
    worse = fine_tune(client, flipped(DATA, every=3), base="gpt-4.1-nano-2025-04-14")[0]
    report2 = migrate(golden, [setup["dear"], worse], client=client)
    w = {c.name: c for c in report2.candidates}[worse]
    assert w.agreement is not None and 0.5 < w.agreement < 0.8 and not w.within_tolerance
    assert w.p_value is not None and w.p_value < 0.05 and w.fine_tune_only and w.fine_tune_only > 0
    assert report2.recommendation == setup["dear"]
    # with a generous tolerance the cheap one is acceptable again
    lenient = migrate(golden, [setup["dear"], worse], client=client, tolerance=45)
    assert lenient.recommendation == worse
    # a price override can change which faithful candidate is the cheapest
    priced = migrate(
        golden, [setup["dear"], setup["cheap"]], client=client, prices={"ft:gpt-4.1-2025": (0.01, 0.01)}
    )
    assert priced.recommendation == setup["dear"]
    # no candidate within tolerance: no recommendation, and the reason says so
    none = migrate(golden, ["gpt-4.1-mini"], client=client)
    assert none.recommendation is None and "within the tolerance" in none.reason


def test_cli_json_contract_reports_and_a_rerun_asks_nothing(
    finetune_emulator: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    emu = finetune_emulator
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    md, page = tmp_path / "report.md", tmp_path / "report.html"
    argv = [
        "migrate",
        "--golden",
        str(setup["golden"]),
        "--candidate",
        setup["cheap"],
        "--candidate",
        "gpt-4.1-mini+fewshot:4",
        "gpt-4.1-mini+retrieval:2",
        "--train",
        str(setup["train"]),
        "--tolerance",
        "2",
        "--markdown",
        str(md),
        "--html",
        str(page),
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommendation"] == setup["cheap"]
    assert out["candidates"][0]["name"] == setup["cheap"]
    keys = {
        "name",
        "agreement",
        "agreement_ci",
        "accuracy",
        "p_value",
        "cost_per_1k_requests",
        "latency_p50_ms",
        "latency_p95_ms",
    }
    for c in out["candidates"]:
        assert keys <= set(c) and len(c["agreement_ci"]) == 2
    assert {c["name"] for c in out["candidates"]} >= {"gpt-4.1-mini+fewshot:4", "gpt-4.1-mini+retrieval:2"}
    assert setup["cheap"] in md.read_text() and "Recommendation" in md.read_text()
    assert page.read_text().startswith("<!doctype html>") and 'class="best"' in page.read_text()
    for text in (md.read_text(), page.read_text(), json.dumps(out)):
        assert "sk-test" not in text  # the key of this environment (OPENAI_API_KEY) is in no report
    before = chat_posts(emu)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert chat_posts(emu) == before  # every answer from the cache
    assert again["recommendation"] == out["recommendation"]
    assert [c["agreement"] for c in again["candidates"]] == [c["agreement"] for c in out["candidates"]]
    assert all(c["n_requests"] == 0 and c["latency_p50_ms"] is None for c in again["candidates"])
    assert main(argv[:-1]) == 0 and "Recommendation:" in capsys.readouterr().out


def test_bad_inputs_are_exit_2_with_a_clear_message(
    finetune_emulator: Any, setup: dict[str, Any], tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    asked = chat_posts(finetune_emulator)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"messages": e["messages"][:-1]} for e in DATA[:3]])
    assert main(["migrate", "--golden", str(prompts), "--candidate", "gpt-4.1-mini"]) == 2
    err = capsys.readouterr().err
    assert f"{prompts}:1: no answer" in err and f"{prompts}:3: no answer" in err
    assert main(["migrate", "--golden", str(setup["golden"]), "--candidate", "gpt-4.1-mini+fewshot"]) == 2
    assert "does not parse" in capsys.readouterr().err
    assert main(["migrate", "--golden", str(setup["golden"]), "--candidate", "gpt-4.1-mini+fewshot:2"]) == 2
    assert "--train" in capsys.readouterr().err
    assert main(["migrate", "--golden", str(tmp_path / "none.jsonl"), "--candidate", "gpt-4.1-mini"]) == 2
    with pytest.raises(MigrationInputError, match="tolerance"):
        migrate(setup["golden"], ["gpt-4.1-mini"], tolerance=-1)
    assert chat_posts(finetune_emulator) == asked  # bad input: nothing was sent


def test_unknown_candidate_is_exit_1_and_named(
    finetune_emulator: Any, setup: dict[str, Any], monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    code = main(
        [
            "migrate",
            "--golden",
            str(setup["golden"]),
            "--candidate",
            "no-such-model",
            setup["cheap"],
            "--json",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["recommendation"] == setup["cheap"]
    assert "no-such-model" in captured.err and "unanswered" in captured.err


def test_golden_without_references_scores_agreement_only_and_logs_to_wandb(
    finetune_emulator: Any, setup: dict[str, Any], tmp_path: Path
) -> None:
    import wandb

    bare = tmp_path / "bare.jsonl"
    bare.write_bytes(setup["golden"].read_bytes())  # no sidecar beside it
    run = wandb.init(project="migration", job_type="eval")
    try:
        report = migrate(bare, [setup["cheap"], "gpt-4.1-mini"], client=setup["client"], run=run)
        assert run.summary["recommendation"] == setup["cheap"]
    finally:
        run.finish()
    assert report.n_references == 0 and report.warnings and "no references" in report.warnings[0]
    c = {c.name: c for c in report.candidates}
    assert c[setup["cheap"]].accuracy is None and c[setup["cheap"]].p_value_test == "mcnemar_agreement"
    assert c["gpt-4.1-mini"].p_value is not None and c["gpt-4.1-mini"].p_value < 0.05
