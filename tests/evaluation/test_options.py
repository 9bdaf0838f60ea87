"""EvalOptions: the one home of an evaluation's settings, and ``evaluate``/``aevaluate`` forwarding them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_wb._retry import RetryPolicy
from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import BatchOptions, EvalOptions, aevaluate, engine, evaluate
from finetune_wb.evaluation.options import (
    DEFAULT_CONCURRENCY,
    SESSION_OWNED,
    EvalKwargs,
    SessionEvalKwargs,
)
from tests.fakes.chat import make_examples

REPO = Path(__file__).resolve().parents[2]


def _non_defaults(tmp_path: Path) -> dict[str, Any]:
    """A value unlike the default for every option; a new option must be added here to pass."""
    values: dict[str, Any] = {
        "client": object(),
        "concurrency": 3,
        "rpm": 7.0,
        "tpm": 11.0,
        "max_tokens": 5,
        "temperature": 0.7,
        "cache": tmp_path / "answers.sqlite3",
        "run": object(),
        "progress": False,
        "retry": RetryPolicy(max_attempts=2),
        "seed": 9,
        "prices": {"m": (1.0, 2.0)},
        "lineage": [object()],
        "tool_choice": "required",
        "response_format": "json_object",
        "turns": "all",
        "mode": "batch",
        "batch": BatchOptions(wait=False),
    }
    assert set(values) == set(EvalOptions.model_fields)
    defaults = EvalOptions()
    assert all(getattr(defaults, name) != value for name, value in values.items())
    return values


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[EvalOptions]:
    """The options the engine's body receives (it stops there: nothing is asked)."""
    seen: list[EvalOptions] = []

    async def engine_body(examples: Any, *, models: Any, evaluators: Any, opts: EvalOptions) -> Any:
        seen.append(opts)
        return "report"

    monkeypatch.setattr(engine, "_run", engine_body)
    return seen


def _assert_reached(opts: EvalOptions, values: dict[str, Any]) -> None:
    for name, value in values.items():
        got = getattr(opts, name)
        assert got is value or got == value, name


def test_evaluate_forwards_every_option_to_the_engine(tmp_path: Path, captured: list[EvalOptions]) -> None:
    values = _non_defaults(tmp_path)
    assert evaluate(make_examples(2), models="m", **values) == "report"
    _assert_reached(captured[-1], values)
    assert captured[-1].client is values["client"] and captured[-1].run is values["run"]
    assert captured[-1].retry is values["retry"]  # the caller's policy object, not a copy


def test_aevaluate_and_an_options_object_forward_them_too(
    tmp_path: Path, captured: list[EvalOptions]
) -> None:
    values = _non_defaults(tmp_path)
    assert asyncio.run(aevaluate(make_examples(2), models="m", **values)) == "report"
    _assert_reached(captured[-1], values)
    options = EvalOptions(**values)
    evaluate(make_examples(2), models="m", options=options)
    assert captured[-1] is options
    # keywords override the object; what they do not name stays as the object says
    evaluate(make_examples(2), models="m", options=options, concurrency=12, rpm=None)
    assert (captured[-1].concurrency, captured[-1].rpm, captured[-1].seed) == (12, None, 9)
    assert captured[-1].client is values["client"]


def test_defaults_unknown_and_invalid_options(captured: list[EvalOptions]) -> None:
    evaluate(make_examples(1), models="m")
    assert captured[-1] == EvalOptions() and captured[-1].concurrency == DEFAULT_CONCURRENCY
    assert EvalOptions(concurrency=None).concurrency == DEFAULT_CONCURRENCY  # None: the default
    with pytest.raises(
        TypeError, match=r"evaluate\(\) got unexpected keyword argument\(s\) \['concurency'\]"
    ):
        evaluate(make_examples(1), models="m", concurency=8)  # type: ignore[call-arg]
    with pytest.raises(EvaluationError, match=r"evaluate\(\): invalid option\(s\): max_tokens"):
        evaluate(make_examples(1), models="m", max_tokens="many")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="retry"):
        EvalOptions.merged(None, {"retry": "twice"})


def test_the_typed_keywords_mirror_the_model() -> None:
    assert set(EvalKwargs.__annotations__) == set(EvalOptions.model_fields)
    assert set(SessionEvalKwargs.__annotations__) == set(EvalOptions.model_fields) - SESSION_OWNED
    assert {"cache", "run", "lineage"} == SESSION_OWNED


def test_mypy_accepts_the_keyword_calls_users_write_and_rejects_misspelt_ones(tmp_path: Path) -> None:
    snippet = tmp_path / "finetune_wb_typed_usage.py"
    snippet.write_text(
        "from pathlib import Path\n"
        "from finetune_wb import FineTuneSession, RetryPolicy, evaluate, exact_match\n"
        "from finetune_wb.evaluation import EvalOptions\n\n\n"
        "def good(session: FineTuneSession) -> None:\n"
        '    evaluate([], models=["a", "b"], evaluators=[exact_match], concurrency=8, rpm=60, tpm=None,\n'
        '             cache=Path("c.db"), max_tokens=10, temperature=0.5, progress=False, retry=RetryPolicy(),\n'
        '             seed=1, prices={"a": (1.0, 2.0)}, lineage=[], run=None, client=None)\n'
        '    evaluate([], models="a", options=EvalOptions(concurrency=4, rpm=30.0))\n'
        '    session.evaluate(baselines=["x"], concurrency=None, max_tokens=64, temperature=0)\n\n\n'
        "def bad(session: FineTuneSession) -> None:\n"
        '    evaluate([], models="a", concurency=8)\n'
        '    evaluate([], models="a", max_tokens="many")\n'
        '    session.evaluate(baselines=["x"], cache=None)\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--follow-imports=silent",
            str(snippet),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    # mypy's incremental cache may name the snippet by an earlier run's path: match the file name
    errors = [
        line for line in result.stdout.splitlines() if f"{snippet.name}:" in line and ": error:" in line
    ]
    bad_lines = [
        n
        for n, text in enumerate(snippet.read_text().splitlines(), 1)
        if text.startswith("    ") and ("concurency" in text or '"many"' in text or "cache=None" in text)
    ]
    assert sorted(int(line.split(f"{snippet.name}:")[1].split(":")[0]) for line in errors) == bad_lines, (
        result.stdout[-3000:]
    )
    assert "concurency" in errors[0] and '"max_tokens"' in errors[1] and '"cache"' in errors[2]
