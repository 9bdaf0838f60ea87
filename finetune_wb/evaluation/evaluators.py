"""Evaluators: the :class:`Evaluator` protocol, the :func:`evaluator` decorator and :class:`Score`.

An evaluator turns one model answer into a :class:`Score`. Users mostly write a plain function::

    @evaluator
    def mentions_clause(output: str, target: str) -> bool:
        return "clause" in output.lower()

The function may take any subset of ``output``, ``target``, ``example`` (the :class:`ChatExample`) and
``prompt`` (the prompt messages), by name, may be ``async``, and may return a ``bool`` (a binary score, compared
between models with McNemar's test), a number, or a :class:`Score`. The decorator records the evaluator's
name and its configuration arguments so every report says exactly what scored it.

This is the bottom floor of :mod:`finetune_wb.evaluation`: it imports no sibling. The built-ins sit above it
(:mod:`~finetune_wb.evaluation.builtin_evaluators`), resolving names and specs above them
(:mod:`~finetune_wb.evaluation.resolution`), the engine above that.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from finetune_wb.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = ["Evaluator", "FunctionEvaluator", "JudgeContext", "Score", "evaluator", "to_score"]

_ARG_NAMES = ("output", "target", "example", "prompt")


class Score(BaseModel):
    """One evaluator's verdict on one answer.

    ``value`` is None when the answer could not be scored (e.g. a judge gave no verdict); such rows are left
    out of the metric, never counted as wrong.
    """

    value: float | None = Field(description="the score; 1/0 for binary evaluators")
    binary: bool = Field(default=False, description="True for pass/fail scores (McNemar's test applies)")
    label: str | None = Field(default=None, description="a predicted label (classification)")
    explanation: str | None = Field(default=None, description="why, e.g. a judge's reasoning")
    details: dict[str, Any] | None = Field(
        default=None,
        description="per-row facts an evaluator's aggregate() reads (e.g. which fields or calls were right)",
    )


@runtime_checkable
class Evaluator(Protocol):
    """What the engine needs from an evaluator.

    ``name`` identifies the metric in reports and W&B; ``params`` records its configuration; ``ascore``
    scores one answer. Optionally an evaluator may define ``prepare(targets)`` (called once with every
    target before scoring), ``aggregate(scores, targets) -> dict[str, Any]`` for metrics that are not a
    mean (classification adds per-class F1 and a confusion matrix), and ``bind(judge)`` to receive a
    :class:`JudgeContext` for model calls through the engine. An evaluator that needs more of the answer
    than its text (tool calls, refusal, finish reason) defines ``ascore_answer(answer, example)``, which the
    engine then calls instead of ``ascore``; ``answer`` has ``output``, ``tool_calls``, ``refusal`` and
    ``finish_reason``.
    """

    name: str
    params: dict[str, Any]

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score: ...


@runtime_checkable
class JudgeContext(Protocol):
    """What a model-calling evaluator (``llm_judge``) gets from ``bind(judge)``: a way to ask a model.

    The engine's implementation sends the request through its own rate limits, retries and answer cache,
    so grading is paced with the evaluation and a re-run does not pay for it again.
    """

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, client: Any = None, max_tokens: int = 512
    ) -> str:
        """The model's answer to ``messages``; raises :class:`~finetune_wb.errors.EvaluationError` when the
        model did not answer."""
        ...


def to_score(value: Any, *, name: str) -> Score:
    """Coerce an evaluator's return value (bool, number, Score, None) into a :class:`Score`."""
    if isinstance(value, Score):
        if value.value is not None and (math.isnan(value.value) or math.isinf(value.value)):
            return value.model_copy(update={"value": None})
        return value
    if value is None:
        return Score(value=None)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars (np.bool_, np.float32, ...) -> bool / int / float
    if isinstance(value, bool):
        return Score(value=1.0 if value else 0.0, binary=True)
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return Score(value=None, explanation=f"evaluator returned {number} (not scored)")
        return Score(value=number)
    raise EvaluationError(
        f"evaluator {name!r} returned {type(value).__name__}; return a bool, a number or a Score"
    )


class FunctionEvaluator:
    """An evaluator made from a function; build it with :func:`evaluator`."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, params: dict[str, Any] | None = None
    ):
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "evaluator"))
        self.params: dict[str, Any] = dict(params or {})
        signature = inspect.signature(fn)
        accepts_var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        self._wanted = [n for n in _ARG_NAMES if n in signature.parameters or accepts_var_kw]
        unknown = [
            p.name
            for p in signature.parameters.values()
            if p.name not in _ARG_NAMES
            and p.default is p.empty
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.name not in self.params
        ]
        if unknown:
            raise EvaluationError(
                f"evaluator {self.name!r}: parameter(s) {unknown} have no default; an evaluator function may "
                f"take {', '.join(_ARG_NAMES)} by name, other parameters need defaults (set them with "
                ".configure(...))"
            )
        defaults = {
            p.name: p.default
            for p in signature.parameters.values()
            if p.name not in _ARG_NAMES and p.default is not p.empty
        }
        self.params = {**defaults, **self.params}
        # Only the function's own parameters are passed back to it; built-ins record theirs for the report
        # but hold them in a closure.
        self._passable = {k for k in self.params if k in signature.parameters or accepts_var_kw} - set(
            _ARG_NAMES
        )
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def configure(self, *, name: str | None = None, **params: Any) -> FunctionEvaluator:
        """A copy with some configuration parameters changed (recorded in the report) and, optionally, a
        new name — needed to use two variants in one evaluation."""
        return FunctionEvaluator(self.fn, name=name or self.name, params={**self.params, **params})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in unit tests)."""
        return self.fn(*args, **kwargs)

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        available = {
            "output": output,
            "target": target,
            "example": example,
            "prompt": example.prompt_messages() if "prompt" in self._wanted else None,
        }
        kwargs = {n: available[n] for n in self._wanted}
        extra = {k: v for k, v in self.params.items() if k in self._passable}
        result = self.fn(**kwargs, **extra)
        if inspect.isawaitable(result):
            result = await result
        return to_score(result, name=self.name)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<evaluator {self.name}({args})>"


def evaluator(fn: Callable[..., Any] | None = None, *, name: str | None = None, **params: Any) -> Any:
    """Turn a function into an :class:`Evaluator`; use as ``@evaluator`` or ``@evaluator(name=..., k=v)``.

    Extra keyword arguments set the function's own configuration parameters (those with defaults beyond
    ``output``/``target``/``example``/``prompt``); the report records them.
    """

    def wrap(f: Callable[..., Any]) -> FunctionEvaluator:
        return FunctionEvaluator(f, name=name, params=params)

    if fn is not None:
        return wrap(fn)
    return wrap
