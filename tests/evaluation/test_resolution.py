"""Evaluator resolution: names, ``NAME:ARG`` specs, config entries, factories, functions and objects.

Built-ins are known from their registry: a factory decorated with ``@builtin`` is usable by name from
Python, from ``finetune-wb eval --evaluator`` and from a config file, with no list to update.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from finetune_wb import evaluation
from finetune_wb.config.files import resolve_evaluator
from finetune_wb.errors import ConfigError, EvaluationError
from finetune_wb.evaluation import Score, contains, exact_match, regex
from finetune_wb.evaluation.builtin_evaluators import BUILTIN_EVALUATORS, builtin
from finetune_wb.evaluation.evaluators import FunctionEvaluator
from finetune_wb.evaluation.resolution import evaluator_from_spec, resolve_evaluators
from finetune_wb.schema import ChatExample


def test_resolve_evaluators_accepts_names_factories_functions_and_objects() -> None:
    def plain(output: str) -> bool:
        return bool(output)

    class Custom:
        name = "custom"

        async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
            return Score(value=1.0)

    evs = resolve_evaluators(["exact_match", contains, plain, Custom(), regex("x", name="has_x")])
    assert [e.name for e in evs] == ["exact_match", "contains", "plain", "custom", "has_x"]
    assert evs[3].params == {}
    assert [e.name for e in resolve_evaluators(None)] == ["exact_match"]
    assert [e.name for e in resolve_evaluators(plain)] == ["plain"]
    with pytest.raises(EvaluationError, match="unknown evaluator"):
        resolve_evaluators(["nope"])
    with pytest.raises(EvaluationError, match="share the name"):
        resolve_evaluators([exact_match, "exact_match"])
    with pytest.raises(EvaluationError, match="not an evaluator: 42"):
        resolve_evaluators([42])


def test_the_registry_holds_exactly_the_exported_built_ins_in_order() -> None:
    names = ["exact_match", "contains", "regex", "json_valid", "json_match", "classification", "llm_judge"]
    names += ["preference", "json_schema", "json_fields", "tool_call_match"]
    assert list(BUILTIN_EVALUATORS) == names
    assert all(BUILTIN_EVALUATORS[n] is getattr(evaluation, n) for n in names)


@pytest.fixture
def shouting() -> Iterator[object]:
    """A new built-in, registered the way the shipped ones are; removed again after the test."""

    @builtin
    def shouting(word: str = "HEY", *, strict: bool = False, name: str = "shouting") -> FunctionEvaluator:
        def score(output: str) -> bool:
            return word in output if strict else word.lower() in output.lower()

        return FunctionEvaluator(score, name=name, params={"word": word, "strict": strict})

    yield shouting
    del BUILTIN_EVALUATORS["shouting"]


def test_a_newly_registered_built_in_resolves_by_name_everywhere(
    shouting: object, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python: the name, the uncalled factory, NAME:VALUE and NAME:KEY=VALUE
    (by_name,) = resolve_evaluators(["shouting"])
    assert (by_name.name, by_name.params) == ("shouting", {"word": "HEY", "strict": False})
    (uncalled,) = resolve_evaluators([shouting])
    assert uncalled.params == {"word": "HEY", "strict": False}
    (with_arg,) = resolve_evaluators(["shouting:YO"])
    assert with_arg.params == {"word": "YO", "strict": False}
    (with_kw,) = resolve_evaluators(["shouting:word=OI,strict=true"])
    assert with_kw.params == {"word": "OI", "strict": True}
    # a config file's entries: the bare name gives the factory, keyword arguments configure it
    assert resolve_evaluator("shouting") is shouting
    assert resolve_evaluator("shouting", {"word": "X"}).params == {"word": "X", "strict": False}
    # the error for an unknown name lists it among the built-ins
    with pytest.raises(
        EvaluationError, match=r"built-ins are exact_match, .*, llm_judge, .*tool_call_match, shouting"
    ):
        evaluator_from_spec("shoutin")
    # and the command line's help names it
    from finetune_wb.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "shouting" in " ".join(capsys.readouterr().out.split())


def test_config_entries_errors_and_relative_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EvaluationError, match=r"evaluator 'classification' does not accept \['label'\]"):
        evaluator_from_spec("classification", {"label": ["Y"]})
    with pytest.raises(EvaluationError, match="arguments go in the spec itself"):
        evaluator_from_spec("contains:Yes", {"ignore_case": False})
    with pytest.raises(ConfigError, match="unknown evaluator 'exact_matc'"):
        resolve_evaluator("exact_matc")
    (tmp_path / "mine.py").write_text("def short(output):\n    return len(output) < 5\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert evaluator_from_spec("mine.py:short", base_dir=tmp_path).__name__ == "short"
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluator_from_spec("mine.py:short")  # without base_dir: relative to the current directory
