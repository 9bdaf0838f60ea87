"""snapshot(): golden sets from a fine-tune; kill -9 and resume with no repeated request; bad input; no key."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.cli import main
from finetune_wb.migration import ModelShutDownError, snapshot
from finetune_wb.migration.errors import MigrationInputError, ModelNotFoundError
from finetune_wb.migration.golden import meta_path, read_golden
from finetune_wb.tracking.artifacts import ArtifactRef, recorded_artifacts, remember
from tests.fakes.processes import kill9, wait_until
from tests.migration.helpers import chat_posts, fine_tune, prompts_only, write_jsonl, yes_no_examples

CHAT = "/v1/chat/completions"


@pytest.fixture
def ft(finetune_emulator: Any) -> str:
    return fine_tune(finetune_emulator.client(), yes_no_examples(40))[0]


def test_golden_set_from_prompts_with_and_without_references(
    finetune_emulator: Any, ft: str, tmp_path: Path
) -> None:
    emu = finetune_emulator
    data = yes_no_examples(10)
    rows = data[:5] + prompts_only(data[5:])
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    seen: list[Any] = []
    result = snapshot(ft, prompts, client=emu.client(), cache=tmp_path / "c.db", on_estimate=seen.append)
    assert result.complete and (result.n_prompts, result.n_answered, result.n_requests) == (10, 10, 10)
    assert seen and seen[0].n_requests == 10 and seen[0].prompt_tokens > 0
    golden = read_golden(result.golden_path)  # type: ignore[arg-type]
    assert [g.answer for g in golden.rows] == [
        e["messages"][-1]["content"] for e in data
    ]  # it learnt the task
    assert [g.reference for g in golden.rows] == [e["messages"][-1]["content"] for e in data[:5]] + [None] * 5
    assert golden.model == ft and golden.meta["n_references"] == 5
    # the golden file is plain chat JSONL: the prompt, then the model's answer
    first = json.loads(Path(result.golden_path).read_text().splitlines()[0])  # type: ignore[arg-type]
    assert first == {
        "messages": [*data[0]["messages"][:-1], {"role": "assistant", "content": golden.rows[0].answer}]
    }
    # a re-run asks nothing
    before = chat_posts(emu)
    again = snapshot(ft, prompts, client=emu.client(), cache=tmp_path / "c.db")
    assert chat_posts(emu) == before and again.n_requests == 0 and again.n_cached == 10


def _cached(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_mid_snapshot_then_resume_repeats_no_answered_request(
    finetune_emulator: Any, ft: str, tmp_path: Path, monkeypatch: Any
) -> None:
    emu = finetune_emulator
    n = 40
    prompts = write_jsonl(tmp_path / "prompts.jsonl", prompts_only(yes_no_examples(n)))
    out, db = tmp_path / "golden.jsonl", tmp_path / "cache.db"
    emu.inject_latency(0.05, path=CHAT)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    argv = [
        sys.executable,
        "-m",
        "finetune_wb",
        "snapshot",
        ft,
        "--data",
        str(prompts),
        "--out",
        str(out),
        "--cache",
        str(db),
        "--concurrency",
        "4",
        "--json",
    ]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        wait_until(lambda: _cached(db) >= n // 4, child, "a quarter of the answers", timeout=60)
        kill9(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    time.sleep(0.2)  # requests that were in flight reach the journal
    survived = _cached(db)
    assert n // 4 <= survived < n
    assert not out.exists() and not meta_path(out).exists()  # nothing half-written
    asked_before = chat_posts(emu)
    assert asked_before - survived <= 4  # at most the requests in flight were lost
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["n_prompts"], result["n_answered"], result["golden_path"]) == (n, n, str(out))
    assert result["n_cached"] == survived and result["n_requests"] == n - survived
    assert chat_posts(emu) - asked_before == n - survived  # every answered prompt came from the cache
    assert len(read_golden(out).rows) == n


def test_bad_prompt_lines_are_reported_by_line_and_nothing_is_sent(
    finetune_emulator: Any, ft: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    good = json.dumps(prompts_only(yes_no_examples(1))[0])
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                good,
                '{"messages": [{"role": "wizard", "content": "x"}]}',
                '{"messages": [{"role": "system", "content": "only a system prompt"}]}',
            ]
        )
        + "\n"
    )
    with pytest.raises(MigrationInputError) as err:
        snapshot(ft, path, client=finetune_emulator.client())
    text = str(err.value)
    assert f"{path}:2: not JSON" in text and f"{path}:4:" in text and f"{path}:5: nothing to ask" in text
    assert f"{path}:1" not in text and "3 bad line(s)" in text
    monkeypatch.setenv("OPENAI_BASE_URL", finetune_emulator.base_url)
    assert main(["snapshot", ft, "--data", str(path)]) == 2
    assert f"{path}:2: not JSON" in capsys.readouterr().err
    assert chat_posts(finetune_emulator) == 0


def test_unknown_model_and_shut_down_model_are_plain_errors(
    finetune_emulator: Any, ft: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    emu = finetune_emulator
    prompts = write_jsonl(tmp_path / "p.jsonl", prompts_only(yes_no_examples(5)))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        snapshot("ft:gpt-4o-mini-2024-07-18:emulator-org::nope", prompts, client=emu.client())
    emu.retire(ft)  # now, by the emulator's clock
    with pytest.raises(ModelShutDownError, match="has been shut down") as err:
        snapshot(ft, prompts, client=emu.client(), out=tmp_path / "g.jsonl")
    assert err.value.model == ft
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    assert main(["snapshot", ft, "--data", str(prompts), "--out", str(tmp_path / "g.jsonl")]) == 1
    assert "has been shut down" in capsys.readouterr().err
    assert main(["snapshot", "ft:gpt-4o-mini-2024-07-18:emulator-org::nope", "--data", str(prompts)]) == 1
    assert not (tmp_path / "g.jsonl").exists()
    assert chat_posts(emu) <= 2  # at most one probe per run (the one that learnt the model is gone)


def test_a_key_without_access_is_a_plain_error(finetune_emulator: Any, ft: str, tmp_path: Path) -> None:
    emu = finetune_emulator
    emu.inject_fault(path="/v1/models/*", method="GET", status=403, count=1, message="not for this project")
    prompts = write_jsonl(tmp_path / "p.jsonl", prompts_only(yes_no_examples(3)))
    with pytest.raises(ModelNotFoundError, match="this API key may not use model"):
        snapshot(ft, prompts, client=emu.client(max_retries=0))
    assert chat_posts(emu) == 0


def test_a_date_in_the_past_on_the_server_stops_it_before_any_request(
    finetune_emulator: Any, ft: str, tmp_path: Path
) -> None:
    import datetime as dt

    emu = finetune_emulator
    emu.retire("gpt-4o-mini-2024-07-18", at="2030-01-01")  # the server lists a date ...
    prompts = write_jsonl(tmp_path / "p.jsonl", prompts_only(yes_no_examples(3)))
    with pytest.raises(ModelShutDownError, match="on 2030-01-01"):  # ... that is past for this caller
        snapshot(ft, prompts, client=emu.client(), today=dt.date(2030, 2, 1))
    assert chat_posts(emu) == 0


def test_unanswered_rows_leave_no_golden_file_and_exit_1(
    finetune_emulator: Any, ft: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    emu = finetune_emulator
    prompts = write_jsonl(tmp_path / "p.jsonl", prompts_only(yes_no_examples(6)))
    emu.inject_fault(path=CHAT, method="POST", status=400, count=12, message="rejected by the test")  # 2 runs
    result = snapshot(ft, prompts, client=emu.client(), out=tmp_path / "g.jsonl", cache=tmp_path / "c.db")
    assert (
        result.golden_path is None
        and result.n_unanswered == 6
        and "rejected by the test" in str(result.first_error)
    )
    assert not (tmp_path / "g.jsonl").exists() and not meta_path(tmp_path / "g.jsonl").exists()
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    argv = [
        "snapshot",
        ft,
        "--data",
        str(prompts),
        "--out",
        str(tmp_path / "g.jsonl"),
        "--cache",
        str(tmp_path / "c.db"),
    ]
    assert main([*argv, "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["golden_path"] is None and "6 of 6 prompt(s) unanswered" in captured.err
    # the fault is used up: the same command now completes
    assert main(argv) == 0 and (tmp_path / "g.jsonl").exists()


def test_golden_set_artifact_lineage_and_no_key_anywhere(
    finetune_emulator: Any, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    import wandb

    emu = finetune_emulator
    secret = "sk-proj-secret-key-not-in-any-file-12345"
    client = emu.client(api_key=secret)
    ft, job = fine_tune(client, yes_no_examples(40))
    remember(
        ArtifactRef(name=f"model-{job}", type="model", digest="e" * 64, metadata={"fine_tuned_model": ft})
    )
    prompts = write_jsonl(tmp_path / "p.jsonl", yes_no_examples(8))
    run = wandb.init(project="golden", job_type="snapshot")
    try:
        result = snapshot(
            ft, prompts, client=client, run=run, cache=tmp_path / "c.db", out=tmp_path / "g.jsonl"
        )
    finally:
        run.finish()
    assert result.artifact is not None and result.artifact["type"] == "golden-set"
    assert any(name.startswith(f"model-{job}:") for name in result.artifact["inputs"])
    refs = recorded_artifacts("golden-set")
    assert len(refs) == 1 and refs[0].metadata["model"] == ft
    # the CLI logs it in a run of its own (the answers come from the cache; the same artifact is recorded)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    argv = [
        "snapshot",
        ft,
        "--data",
        str(prompts),
        "--out",
        str(tmp_path / "g.jsonl"),
        "--cache",
        str(tmp_path / "c.db"),
        "--wandb-project",
        "golden",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_requests"] == 0 and out["artifact"]["type"] == "golden-set"
    assert len(recorded_artifacts("golden-set")) == 1
    for root in (tmp_path, Path(os.environ["WANDB_DIR"]), Path(os.environ["FINETUNE_WB_HOME"])):
        for f in root.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f


def test_snapshot_and_migrate_through_the_batch_api(
    finetune_emulator: Any, ft: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """`--batch` on snapshot and migrate: the same golden set and report, asked through the Batch API."""
    emu = finetune_emulator
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    emu.pace = 0.002  # a batch runs through its lifecycle in milliseconds
    prompts = write_jsonl(tmp_path / "prompts.jsonl", yes_no_examples(8))
    golden = tmp_path / "golden.jsonl"
    fast = ["--batch", "--batch-poll-interval", "0.01", "--cache", str(tmp_path / "c.db"), "--no-progress"]
    assert main(["snapshot", ft, "--data", str(prompts), "--out", str(golden), *fast]) == 0
    batches = [e for e in emu.journal if e.method == "POST" and e.path == "/v1/batches" and e.status == 200]
    assert len(batches) == 1 and chat_posts(emu) == 0 and golden.exists()
    argv = ["migrate", "--golden", str(golden), "--candidate", "gpt-4.1-mini-2025-04-14", "--json", *fast]
    assert main(argv) == 0  # every golden prompt answered by the candidate, through a second batch
    batches = [e for e in emu.journal if e.method == "POST" and e.path == "/v1/batches" and e.status == 200]
    assert len(batches) == 2 and chat_posts(emu) == 0
    assert main(["snapshot", ft, "--data", str(prompts), "--no-wait"]) == 2  # batch flags need --batch
