"""FineTuneSession against the emulator: the whole chain, idempotent steps, resume in-process, threads."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.errors import ConfigError, DataError, DataValidationError, JobFailed
from finetune_wb.schema import JobSpec
from finetune_wb.session.facade import FineTuneSession

SPEC = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=2)
BASE = "gpt-4o-mini-2024-07-18"


def _posts(emu: Any, path: str) -> int:
    return sum(1 for e in emu.journal if e.method == "POST" and e.path == path and e.status < 400)


def _chat_posts(emu: Any) -> int:
    return _posts(emu, "/v1/chat/completions")


def _records(n: int = 60) -> list[dict[str, str]]:
    return load_demo_records()[:n]


def _session(emu: Any, tmp_path: Path, **kw: Any) -> FineTuneSession:
    kw.setdefault("poll_interval", 0.1)
    return FineTuneSession(project="t-session", client=emu.client(), state_path=tmp_path / "state.json", **kw)


def _wandb_run_dirs() -> list[Path]:
    import os

    root = Path(os.environ["WANDB_DIR"])
    return sorted(root.rglob("offline-run-*"))


def _lineages(*run_dirs: str) -> list[dict[str, Any]]:
    """``config["lineage"]`` of offline runs, read back with ``wandb leet inspect`` (in parallel)."""
    import subprocess
    import sys

    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    procs = [
        subprocess.Popen(
            [wandb_cli, "leet", "inspect", "--summary", "--json", d], stdout=subprocess.PIPE, text=True
        )
        for d in run_dirs
    ]
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        out.append(dict(json.loads(stdout)["config"]["lineage"]))
    return out


def test_whole_chain_tracks_and_beats_baseline(
    finetune_emulator: Any, tmp_path: Path, no_online_wandb: list[str]
) -> None:
    session = _session(finetune_emulator, tmp_path)
    train, test = session.prepare(_records(), template=demo_template(), n_train=20, seed=1)
    assert (len(train), len(test)) == (20, 40)
    report = session.validate(model=SPEC.model)
    assert report.ok
    job = session.fine_tune(SPEC)
    assert job.id.startswith("ftjob-")
    job = session.wait()
    assert job.status == "succeeded" and job.fine_tuned_model
    result = session.evaluate(baselines=[BASE], evaluators=["exact_match"])
    ft, base = job.fine_tuned_model, BASE
    assert result.metric(ft, "exact_match") > result.metric(base, "exact_match")
    assert result.comparison(ft, base, "exact_match").p_value < 0.05

    state = json.loads(session.state_path.read_text())
    assert state["job_id"] == job.id and state["job_status"] == "succeeded"
    assert state["fine_tuned_model"] == ft and state["tracked"] is True
    assert state["training_file_id"] and len(state["train_digest"]) == 64
    assert state["train_artifact"]["metadata"]["openai_file_id"] == state["training_file_id"]
    assert state["model_artifact"]["metadata"]["job_id"] == job.id
    assert state["eval_summary"]["metrics"][ft]["exact_match"]["value"] == result.metric(ft, "exact_match")
    assert set(state["wandb_runs"]) == {"dataset", "fine-tune", "eval"}
    for run_dir in state["wandb_runs"].values():
        assert Path(run_dir).is_dir()
    assert len(_wandb_run_dirs()) == 3
    assert no_online_wandb == []  # offline: no use_artifact, wandb.Api or wandb.login
    # lineage, read back from the offline runs: train data (with its file id) -> fine-tune run -> model -> eval
    ft_lineage, eval_lineage = _lineages(state["wandb_runs"]["fine-tune"], state["wandb_runs"]["eval"])
    ft_inputs = ft_lineage["inputs"]
    assert [(i["type"], i["sha256"]) for i in ft_inputs] == [("dataset", state["train_digest"])]
    assert ft_inputs[0]["openai_file_id"] == state["training_file_id"]
    eval_inputs = {i["type"]: i for i in eval_lineage["inputs"]}
    assert eval_inputs["dataset"]["sha256"] == state["test_digest"]
    assert eval_inputs["model"]["name"] == state["model_artifact"]["name"] == f"model-{job.id}"
    # nothing secret in the state file
    assert "sk-test" not in session.state_path.read_text()
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1


def test_steps_are_idempotent_and_resume_reuses_everything(finetune_emulator: Any, tmp_path: Path) -> None:
    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    session.prepare(_records(40), template=demo_template(), n_train=16, seed=3)
    first = session.fine_tune(SPEC)
    again = session.fine_tune(SPEC)
    assert again.id == first.id
    session.wait()
    session.evaluate(baselines=[BASE])
    chats = _chat_posts(finetune_emulator)
    assert chats == 2 * 24

    resumed = FineTuneSession.resume(
        session.state_path, client=finetune_emulator.client(), wandb_mode="disabled"
    )
    assert resumed.state.session_id == session.state.session_id
    # the same data again is a no-op; the same spec returns the same job
    resumed.prepare(_records(40), template=demo_template(), n_train=16, seed=3)
    assert resumed.fine_tune(SPEC).id == first.id
    assert resumed.wait().id == first.id
    report = resumed.evaluate(baselines=[BASE])
    assert _chat_posts(finetune_emulator) == chats  # every answer came from the cache
    assert all(m.n_cached == m.n_rows for m in report.models)
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1

    with pytest.raises(ConfigError, match="another spec"):
        resumed.fine_tune(JobSpec(model=SPEC.model, n_epochs=5))
    with pytest.raises(ConfigError, match="other training data"):
        resumed.prepare(_records(40), template=demo_template(), n_train=16, seed=4)


def test_validation_errors_stop_before_any_upload(finetune_emulator: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good_line = json.dumps(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    )
    bad.write_text(
        good_line + "\n" + json.dumps({"messages": [{"role": "user", "content": "only a question"}]}) + "\n"
    )
    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    session.use_files(bad, bad)
    with pytest.raises(DataValidationError):
        session.validate()
    assert session.state.validation is not None and session.state.validation["ok"] is False
    with pytest.raises(DataValidationError):
        session.fine_tune(SPEC)
    assert _posts(finetune_emulator, "/v1/files") == 0
    assert session.state.job_id is None


def test_steps_out_of_order_say_what_to_do(tmp_path: Path) -> None:
    session = FineTuneSession(project="t", state_path=tmp_path / "s.json", wandb_mode="disabled")
    with pytest.raises(ConfigError, match="prepare"):
        session.validate()
    with pytest.raises(ConfigError, match="fine_tune"):
        session.wait()
    with pytest.raises(ConfigError, match="wait"):
        session.evaluate(baselines=[BASE])
    with pytest.raises(ConfigError, match="no session state file"):
        FineTuneSession.resume(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"junk\.json"):
        FineTuneSession.resume(tmp_path / "junk.json")


def test_failed_job_is_recorded(finetune_emulator: Any, tmp_path: Path) -> None:
    finetune_emulator.pace = 0.5  # slow enough to fail the job before it finishes
    session = _session(finetune_emulator, tmp_path)
    session.prepare(_records(30), template=demo_template(), n_train=10, seed=5)
    job = session.fine_tune(SPEC)
    finetune_emulator.fail_job(job.id, code="invalid_training_file", message="bad file")
    with pytest.raises(JobFailed) as info:
        session.wait()
    assert info.value.job_id == job.id
    state = json.loads(session.state_path.read_text())
    assert state["job_status"] == "failed" and state["fine_tuned_model"] is None
    with pytest.raises(ConfigError, match="no fine-tuned model"):
        session.evaluate(baselines=[BASE])


def test_one_session_per_thread(finetune_emulator: Any, tmp_path: Path) -> None:
    results: dict[int, str] = {}
    runs: dict[int, dict[str, str]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            s = FineTuneSession(
                project=f"t-{i}",
                client=finetune_emulator.client(),
                state_path=tmp_path / f"s{i}.json",
                poll_interval=0.05,
            )  # W&B offline (conftest): each thread's session has its own runs
            s.prepare(_records(30 + 10 * i), template=demo_template(), n_train=10, seed=i)
            s.fine_tune(SPEC)
            results[i] = s.wait().fine_tuned_model or ""
            runs[i] = dict(s.state.wandb_runs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(set(results.values())) == 3
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 3
    run_dirs = [d for i in range(3) for d in runs[i].values()]
    assert [sorted(runs[i]) for i in range(3)] == [["dataset", "fine-tune"]] * 3
    assert len(set(run_dirs)) == 6 and all(Path(d).is_dir() for d in run_dirs)


def test_state_file_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_wb import _paths

    session = FineTuneSession(project="atomic", state_path=tmp_path / "s.json", wandb_mode="disabled")
    before = session.state_path.read_text()
    session.state.job_id = "ftjob-new"

    def crash(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_paths.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        session.context.save()
    assert session.state_path.read_text() == before  # the old state survives a failed write
    # and no temporary file is left behind (the lock file of the state file stays, as lock files do)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.json.lock"]
    monkeypatch.undo()
    session.context.save()
    assert json.loads(session.state_path.read_text())["job_id"] == "ftjob-new"
    assert FineTuneSession(project="atomic", state_path=tmp_path / "s.json").state.job_id == "ftjob-new"
    with pytest.raises(ConfigError, match="belongs to project"):
        FineTuneSession(project="other", state_path=tmp_path / "s.json")


def test_default_state_file_lives_under_the_state_dir() -> None:
    import os

    session = FineTuneSession(project="my project/1", wandb_mode="disabled")
    home = Path(os.environ["FINETUNE_WB_HOME"]).resolve()
    assert session.state_path.parent == home / "sessions"
    assert session.state_path.name.startswith("my-project-1-") and session.state_path.is_file()
    assert session.data_dir == session.state_path.with_name(f"{session.state_path.stem}-data")
    assert "project='my project/1'" in repr(session)


def test_wait_timeout_leaves_the_job_to_wait_for_again(finetune_emulator: Any, tmp_path: Path) -> None:
    from finetune_wb.errors import JobTimeout

    finetune_emulator.pace = 0.2
    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    session.prepare(_records(30), template=demo_template(), n_train=10, seed=6)
    job = session.fine_tune(SPEC)
    with pytest.raises(JobTimeout):
        session.wait(timeout=0.2)
    assert session.state.job_id == job.id and not session.state.tracked
    finetune_emulator.pace = 0.01
    assert session.wait().status == "succeeded"
    assert session.state.job_status == "succeeded" and session.state.fine_tuned_model
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1


QUIET_SCRIPT = """
import os
import sys
from openai import OpenAI
from finetune_wb import FineTuneSession, JobSpec
from finetune_wb.data.demo_dataset import demo_template, load_demo_records

environ = dict(os.environ)
session = FineTuneSession(
    project="quiet", client=OpenAI(base_url=sys.argv[1], api_key="sk-test"), state_path=sys.argv[2],
    poll_interval=0.05,
)
session.prepare(load_demo_records()[:40], template=demo_template(), n_train=15, seed=3)
session.validate()
session.fine_tune(JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=2))
session.wait()
session.evaluate(baselines=["gpt-4o-mini-2024-07-18"])
assert len(session.state.wandb_runs) == 3, session.state.wandb_runs
# no global state: the environment is as it was, but for the socket wandb's own service process announces
changed = {k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k)}
assert changed <= {"WANDB_SERVICE"}, changed
"""


def test_a_session_prints_nothing_in_a_plain_process(finetune_emulator: Any, tmp_path: Path) -> None:
    """No stdout, no stderr, no change to os.environ: no progress bars by default, no W&B run banners, and our W&B-offline warning
    goes to the logger only (a plain process has no logging configured, so Python would print WARNINGs)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "quiet.py"
    script.write_text(QUIET_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # conftest silences W&B; undo that
    env["WANDB_DISABLE_WEAVE"] = (
        "true"  # wandb's own once-per-process "use Weave" hint (see docs/concepts.md)
    )
    proc = subprocess.run(
        [sys.executable, str(script), finetune_emulator.base_url, str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")


def test_common_input_mistakes_are_caught_or_forgiven(finetune_emulator: Any, tmp_path: Path) -> None:
    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['usr'\].*'user'"):
        session.prepare(_records(20), template={"usr": "Clause: {text}"})
    with pytest.raises(DataError, match="no records"):
        session.prepare([], template=demo_template())
    session.prepare(_records(30), template=demo_template(), n_train=10, seed=2)
    with pytest.raises(ConfigError, match=r"invalid JobSpec \(epochs: unknown key\).*n_epochs"):
        session.fine_tune({"model": BASE, "epochs": 3})
    assert _posts(finetune_emulator, "/v1/files") == 0  # nothing was uploaded for a bad spec
    # a single model name is one model, not one model per character
    report = session.evaluate(baselines="gpt-4.1-mini-2025-04-14", models=BASE, evaluators=["exact_match"])
    assert list(report.metrics) == [BASE, "gpt-4.1-mini-2025-04-14"]
    assert session.state.eval_models == [BASE, "gpt-4.1-mini-2025-04-14"]


def test_a_crash_inside_the_create_call_adopts_the_job_it_created(
    finetune_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server created the job but the process died before the job id reached the state file."""
    from finetune_wb.jobs import operations as jobs

    real_create = jobs.create_job
    created: list[str] = []

    def create_then_die(*args: Any, **kwargs: Any) -> Any:
        created.append(real_create(*args, **kwargs).id)
        raise KeyboardInterrupt  # killed between the server's answer and the state write

    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    session.prepare(_records(30), template=demo_template(), n_train=10, seed=4)
    monkeypatch.setattr(jobs, "create_job", create_then_die)
    with pytest.raises(KeyboardInterrupt):
        session.fine_tune(SPEC)
    monkeypatch.undo()
    state = json.loads(session.state_path.read_text())
    assert state["job_id"] is None and state["job_request_id"] and state["training_file_id"]

    resumed = FineTuneSession.resume(
        session.state_path, client=finetune_emulator.client(), wandb_mode="disabled"
    )
    assert resumed.fine_tune(SPEC).id == created[0]
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
    assert _posts(finetune_emulator, "/v1/files") == 1


@pytest.mark.parametrize("given", [None, 3])
def test_evaluation_concurrency_defaults_to_the_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: int | None
) -> None:
    from finetune_wb import evaluation
    from finetune_wb.evaluation.options import DEFAULT_CONCURRENCY

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_evaluate(examples: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    session = FineTuneSession(project="conc", state_path=tmp_path / "s.json", wandb_mode="disabled")
    session.prepare(_records(20), template=demo_template(), n_train=10, seed=1)
    with pytest.raises(Stop):
        session.evaluate(models=[BASE], concurrency=given)
    assert seen["options"].concurrency == (DEFAULT_CONCURRENCY if given is None else given)


def test_use_files_then_other_data_after_the_upload_is_refused(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    from finetune_wb.data.build import build_examples
    from finetune_wb.data.jsonl import write_jsonl

    examples = build_examples(_records(30), template=demo_template())
    train = write_jsonl(examples[:12], tmp_path / "mine-train.jsonl")
    test = write_jsonl(examples[12:], tmp_path / "mine-test.jsonl")
    session = _session(finetune_emulator, tmp_path, wandb_mode="disabled")
    with pytest.raises(ConfigError, match="no such train file"):
        session.use_files(tmp_path / "missing.jsonl")
    session.use_files(train, test)
    assert (session.state.n_train, session.state.n_test) == (12, 18)
    assert len(session.test_examples) == 18
    session.fine_tune(SPEC)
    other = write_jsonl(examples[:11], tmp_path / "other-train.jsonl")
    with pytest.raises(ConfigError, match=r"already uploaded other training data.*another state_path"):
        session.use_files(other)
    session.use_files(train, test)  # the same data again is fine
    assert _posts(finetune_emulator, "/v1/files") == 1


def test_resume_from_a_missing_or_corrupt_state_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot resume: no session state file"):
        FineTuneSession.resume(tmp_path / "missing.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"corrupt\.json: not a finetune_wb session state file \(Invalid JSON"
    ):
        FineTuneSession.resume(corrupt)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"project": 5}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(project: .*\); pass another state_path"):
        FineTuneSession.resume(wrong)


def test_a_w_and_b_run_that_cannot_start_says_what_to_do(
    finetune_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    from finetune_wb.errors import TrackingError

    def refuse(*_: Any, **__: Any) -> Any:
        raise RuntimeError("No API key configured")

    monkeypatch.setattr(wandb, "init", refuse)
    session = _session(finetune_emulator, tmp_path, wandb_mode="online")
    session.prepare(_records(30), template=demo_template(), n_train=10, seed=5)
    with pytest.raises(TrackingError, match=r"t-session.*No API key configured.*wandb_mode='offline'"):
        session.fine_tune(SPEC)
    # the upload is kept: choosing another W&B mode and trying again does not upload a second time
    monkeypatch.undo()
    again = FineTuneSession.resume(
        session.state_path, client=finetune_emulator.client(), wandb_mode="disabled"
    )
    again.fine_tune(SPEC)
    assert _posts(finetune_emulator, "/v1/files") == 1
    assert _posts(finetune_emulator, "/v1/fine_tuning/jobs") == 1
