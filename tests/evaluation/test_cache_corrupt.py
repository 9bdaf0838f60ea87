"""A damaged answer cache file: an error that names the file and what to do (CLI exit 2), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_wb.errors import EvalCacheError, FineTuneError
from finetune_wb.evaluation import evaluate
from finetune_wb.evaluation.cache import AnswerCache, CachedAnswer
from tests.fakes.chat import FAST_RETRY, FakeChat, make_examples

REPO = Path(__file__).resolve().parents[2]
PAGE = 4096


def _full_cache(path: Path, rows: int = 400) -> None:
    with AnswerCache(path) as cache:
        for i in range(rows):
            cache.put(
                f"{i:064x}", base_url="http://x/v1", model="m", answer=CachedAnswer(output="answer " * 40)
            )


def damage(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(os.urandom(3 * PAGE))
        return
    _full_cache(path)
    data = bytearray(path.read_bytes())
    assert len(data) > 20 * PAGE
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2 + 100]))
    else:  # malformed_page: the header is intact, a B-tree page in the middle is overwritten
        start = 10 * PAGE
        data[start : start + PAGE] = b"\xff" * PAGE
        path.write_bytes(bytes(data))


HOWS = ["garbage", "truncated", "malformed_page"]


def _says_what_to_do(message: str, path: Path) -> None:
    assert str(path) in message
    assert "move it aside" in message and "--no-cache" in message and "cache=None" in message


@pytest.mark.parametrize("how", HOWS)
def test_evaluate_raises_an_eval_cache_error_naming_the_file(tmp_path: Path, how: str) -> None:
    cache = tmp_path / "cache.sqlite3"
    damage(cache, how)
    fake = FakeChat()
    with pytest.raises(EvalCacheError) as info:
        evaluate(
            make_examples(3),
            models=["m"],
            client=fake.client(),
            cache=cache,
            progress=False,
            retry=FAST_RETRY,
        )
    assert isinstance(info.value, FineTuneError)
    _says_what_to_do(str(info.value), cache)
    assert fake.requests == []  # nothing paid for before the cache is known to be readable
    # the advice works: without the cache, the evaluation runs
    report = evaluate(make_examples(3), models=["m"], client=fake.client(), cache=None, progress=False)
    assert report.n_unanswered == 0


@pytest.mark.parametrize("how", HOWS)
def test_cli_eval_on_a_damaged_cache_exits_2_with_the_message(tmp_path: Path, how: str) -> None:
    cache = tmp_path / "cache.sqlite3"
    damage(cache, how)
    data = tmp_path / "test.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
        + "\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "finetune_wb",
            "eval",
            "--data",
            str(data),
            "--model",
            "m",
            "--cache",
            str(cache),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the evaluation answer cache")
    _says_what_to_do(proc.stderr, cache)


def test_the_session_raises_the_same_error(tmp_path: Path) -> None:
    from finetune_wb.data.demo_dataset import demo_template, load_demo_records
    from finetune_wb.session.facade import FineTuneSession

    session = FineTuneSession(project="ev", state_path=tmp_path / "s.json", wandb_mode="disabled")
    session.prepare(load_demo_records()[:20], template=demo_template(), n_train=10, seed=1)
    fake = FakeChat()
    with pytest.raises(EvalCacheError) as first:  # let the session pick its cache path, then damage it
        path = Path(session.context.data_dir) / "eval-cache.sqlite"
        damage(path, "malformed_page")
        session.evaluate(models=["m"], client=fake.client(), progress=False, retry=FAST_RETRY)
    message = str(first.value)
    _says_what_to_do(message, Path(session.state.eval_cache_path or path))
    assert fake.requests == []
