"""The session's evaluation step: its options reach ``evaluate``, filled with the session's own settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune_wb import evaluation
from finetune_wb._retry import RetryPolicy
from finetune_wb.data.demo_dataset import demo_template, load_demo_records
from finetune_wb.errors import ConfigError
from finetune_wb.evaluation import BatchOptions, EvalOptions
from finetune_wb.evaluation.options import SESSION_OWNED
from finetune_wb.session.facade import FineTuneSession

BASE = "gpt-4o-mini-2024-07-18"


class Stop(Exception):
    """Raised by the stand-in for ``evaluate``: nothing is asked."""


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def fake_evaluate(examples: Any, **kwargs: Any) -> Any:
        calls.update(kwargs, examples=examples)
        raise Stop

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    return calls


def _session(tmp_path: Path, **kw: Any) -> FineTuneSession:
    session = FineTuneSession(project="ev", state_path=tmp_path / "s.json", wandb_mode="disabled", **kw)
    session.prepare(load_demo_records()[:20], template=demo_template(), n_train=10, seed=1)
    return session


def test_every_option_the_session_takes_reaches_evaluate(tmp_path: Path, seen: dict[str, Any]) -> None:
    client = object()
    values: dict[str, Any] = {
        "client": client,
        "concurrency": 3,
        "rpm": 7.0,
        "tpm": 11.0,
        "max_tokens": 5,
        "temperature": 0.7,
        "progress": True,
        "retry": RetryPolicy(max_attempts=2),
        "seed": 9,
        "prices": {"m": (1.0, 2.0)},
        "tool_choice": "auto",
        "response_format": "json_object",
        "turns": "all",
        "mode": "batch",
        "batch": BatchOptions(wait=False),
    }
    assert set(values) == set(EvalOptions.model_fields) - SESSION_OWNED  # a new option must be added here
    session = _session(tmp_path)
    with pytest.raises(Stop):
        session.evaluate(baselines=BASE, models=["ft:x"], **values)
    options: EvalOptions = seen["options"]
    for name, value in values.items():
        assert getattr(options, name) == value, name
    assert options.client is client
    # what the session sets itself: its cache file (in the state before any request), no run, no lineage
    assert options.cache == session.state.eval_cache_path and Path(str(options.cache)).parent.is_dir()
    assert (options.run, list(options.lineage)) == (None, [])
    assert seen["models"] == ["ft:x", BASE] and seen["examples"] == Path(session.state.test_path or "")


def test_the_sessions_client_and_progress_apply_unless_given(tmp_path: Path, seen: dict[str, Any]) -> None:
    mine = object()
    session = _session(tmp_path, client=mine, progress=False)  # type: ignore[arg-type]
    with pytest.raises(Stop):
        session.evaluate(models=[BASE], options=EvalOptions(max_tokens=8))
    options: EvalOptions = seen["options"]
    assert (options.client, options.progress, options.max_tokens) == (mine, False, 8)
    with pytest.raises(Stop):
        session.evaluate(models=[BASE], progress=True, client=None)
    assert (seen["options"].client, seen["options"].progress) == (None, True)


@pytest.mark.parametrize(("owned", "value"), [("cache", False), ("run", None), ("lineage", ())])
def test_the_cache_run_and_lineage_are_the_sessions(
    tmp_path: Path, seen: dict[str, Any], owned: str, value: Any
) -> None:
    session = _session(tmp_path)
    with pytest.raises(ConfigError, match=f"session.evaluate sets {owned} itself"):
        session.evaluate(models=[BASE], options=EvalOptions(**{owned: value}))
    with pytest.raises(ConfigError, match=f"session.evaluate sets {owned} itself"):
        session.evaluate(models=[BASE], **{owned: value})
    assert seen == {}
