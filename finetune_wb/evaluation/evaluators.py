"""Evaluators: the :class:`Evaluator` protocol, the :func:`evaluator` decorator and the built-ins.

An evaluator turns one model answer into a :class:`Score`. Users mostly write a plain function::

    @evaluator
    def mentions_clause(output: str, target: str) -> bool:
        return "clause" in output.lower()

The function may take any subset of ``output``, ``target``, ``example`` (the :class:`ChatExample`) and
``prompt`` (the prompt messages), by name, may be ``async``, and may return a ``bool`` (a binary score, compared
between models with McNemar's test), a number, or a :class:`Score`. The decorator records the evaluator's
name and its configuration arguments so every report says exactly what scored it.

Built-ins are factories: ``exact_match(ignore_case=False)`` returns a configured evaluator; passing the
factory itself (``exact_match``) uses the defaults.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from finetune_wb.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.engine import JudgeContext
    from finetune_wb.schema import ChatExample

__all__ = [
    "BUILTIN_EVALUATORS",
    "Evaluator",
    "FunctionEvaluator",
    "Score",
    "classification",
    "contains",
    "evaluator",
    "exact_match",
    "json_match",
    "json_valid",
    "llm_judge",
    "regex",
    "resolve_evaluators",
]

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


@runtime_checkable
class Evaluator(Protocol):
    """What the engine needs from an evaluator.

    ``name`` identifies the metric in reports and W&B; ``params`` records its configuration; ``ascore``
    scores one answer. Optionally an evaluator may define ``aggregate(scores, targets) -> dict[str, Any]``
    for metrics that are not a mean (classification adds per-class F1 and a confusion matrix), and
    ``bind(judge)`` to receive a :class:`~finetune_wb.evaluation.engine.JudgeContext` for model calls.
    """

    name: str
    params: dict[str, Any]

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score: ...


def to_score(value: Any, *, name: str) -> Score:
    """Coerce an evaluator's return value (bool, number, Score, None) into a :class:`Score`."""
    if isinstance(value, Score):
        return value
    if value is None:
        return Score(value=None)
    if isinstance(value, bool):
        return Score(value=1.0 if value else 0.0, binary=True)
    if isinstance(value, (int, float)):
        return Score(value=float(value))
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


# ----------------------------------------------------------------------------------------------- built-ins

_TRAILING_PUNCT = string.punctuation + "。！？”’»"


def _normalise(text: str, *, ignore_case: bool, normalize_whitespace: bool, strip_punctuation: bool) -> str:
    out = text.strip()
    if normalize_whitespace:
        out = " ".join(out.split())
    if strip_punctuation:
        out = out.strip(_TRAILING_PUNCT + " ")
    if ignore_case:
        out = out.casefold()
    return out


def _builtin(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a factory so that passing it uncalled (``evaluators=[exact_match]``) means its defaults."""
    factory._finetune_wb_factory = True  # type: ignore[attr-defined]
    return factory


@_builtin
def exact_match(
    *,
    ignore_case: bool = True,
    normalize_whitespace: bool = True,
    strip_punctuation: bool = True,
    name: str = "exact_match",
) -> FunctionEvaluator:
    """1 when the answer equals the target after normalising case, inner whitespace and surrounding
    punctuation (each switchable), else 0."""
    opts = {
        "ignore_case": ignore_case,
        "normalize_whitespace": normalize_whitespace,
        "strip_punctuation": strip_punctuation,
    }

    def score(output: str, target: str) -> bool:
        return _normalise(output, **opts) == _normalise(target, **opts)

    return FunctionEvaluator(score, name=name, params=opts)


@_builtin
def contains(
    text: str | None = None, *, ignore_case: bool = True, name: str = "contains"
) -> FunctionEvaluator:
    """1 when the answer contains ``text`` (default: the target), else 0."""

    def score(output: str, target: str) -> bool:
        needle = target if text is None else text
        if ignore_case:
            return needle.casefold().strip() in output.casefold()
        return needle.strip() in output

    return FunctionEvaluator(score, name=name, params={"text": text, "ignore_case": ignore_case})


@_builtin
def regex(
    pattern: str | None = None,
    *,
    ignore_case: bool = False,
    fullmatch: bool = False,
    name: str = "regex",
) -> FunctionEvaluator:
    """1 when ``pattern`` (default: the target, as a regular expression) matches the answer, else 0."""
    flags = re.IGNORECASE if ignore_case else 0
    compiled = re.compile(pattern, flags) if pattern is not None else None

    def score(output: str, target: str) -> bool:
        rx = compiled if compiled is not None else re.compile(target, flags)
        found = rx.fullmatch(output.strip()) if fullmatch else rx.search(output)
        return found is not None

    params = {"pattern": pattern, "ignore_case": ignore_case, "fullmatch": fullmatch}
    return FunctionEvaluator(score, name=name, params=params)


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def _parse_json(text: str, *, strip_fences: bool) -> tuple[bool, Any]:
    if strip_fences:
        m = _FENCE.match(text)
        if m:
            text = m.group(1)
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


@_builtin
def json_valid(*, strip_fences: bool = True, name: str = "json_valid") -> FunctionEvaluator:
    """1 when the answer parses as JSON (optionally inside a Markdown code fence), else 0."""

    def score(output: str) -> bool:
        return _parse_json(output, strip_fences=strip_fences)[0]

    return FunctionEvaluator(score, name=name, params={"strip_fences": strip_fences})


@_builtin
def json_match(
    *, keys: Sequence[str] | None = None, strip_fences: bool = True, name: str = "json_match"
) -> FunctionEvaluator:
    """1 when the answer's JSON equals the target's JSON (only ``keys`` of objects, when given), else 0.

    An answer that is not JSON scores 0; a target that is not JSON is an error in the data (score None).
    """
    key_list = list(keys) if keys is not None else None

    def score(output: str, target: str) -> Score:
        ok_t, want = _parse_json(target, strip_fences=strip_fences)
        if not ok_t:
            return Score(value=None, binary=True, explanation="target is not valid JSON")
        ok_o, got = _parse_json(output, strip_fences=strip_fences)
        if not ok_o:
            return Score(value=0.0, binary=True, explanation="answer is not valid JSON")
        if key_list is not None and isinstance(want, dict) and isinstance(got, dict):
            want = {k: want.get(k) for k in key_list}
            got = {k: got.get(k) for k in key_list}
        return Score(value=1.0 if got == want else 0.0, binary=True)

    params = {"keys": key_list, "strip_fences": strip_fences}
    return FunctionEvaluator(score, name=name, params=params)


OTHER_LABEL = "<other>"


class ClassificationEvaluator:
    """Accuracy per row plus per-class precision/recall/F1, macro and micro averages and a confusion matrix.

    The predicted label is the label the answer equals after normalisation, else the label whose word(s)
    occur earliest in the answer, else ``"<other>"``.
    """

    def __init__(self, labels: Sequence[str] | None, *, ignore_case: bool, name: str) -> None:
        self.name = name
        self.labels = list(labels) if labels is not None else None
        self.ignore_case = ignore_case
        self.params: dict[str, Any] = {"labels": self.labels, "ignore_case": ignore_case}
        self._label_set: list[str] = list(self.labels or [])

    def prepare(self, targets: Sequence[str]) -> None:
        """Called by the engine once before scoring: without explicit labels, the targets are the label set."""
        if self.labels is None:
            self._label_set = sorted(set(targets))

    def _norm(self, text: str) -> str:
        return _normalise(
            text, ignore_case=self.ignore_case, normalize_whitespace=True, strip_punctuation=True
        )

    def predict(self, output: str, labels: Sequence[str]) -> str:
        norm_out = self._norm(output)
        for label in labels:
            if norm_out == self._norm(label):
                return label
        best: tuple[int, int, str] | None = None
        flags = re.IGNORECASE if self.ignore_case else 0
        for label in labels:
            m = re.search(r"(?<!\w)" + re.escape(label.strip()) + r"(?!\w)", output, flags)
            if m and (best is None or (m.start(), -len(label)) < (best[0], best[1])):
                best = (m.start(), -len(label), label)
        return best[2] if best else OTHER_LABEL

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        labels = self._label_set if target in self._label_set else [*self._label_set, target]
        predicted = self.predict(output, labels)
        gold = self._canonical(target)
        return Score(value=1.0 if predicted == gold else 0.0, binary=True, label=predicted)

    def _canonical(self, target: str) -> str:
        for label in self.labels or []:
            if self._norm(label) == self._norm(target):
                return label
        return target

    def aggregate(self, scores: Sequence[Score], targets: Sequence[str]) -> dict[str, Any]:
        """Per-class metrics and the confusion matrix for one model's scored rows."""
        from finetune_wb.evaluation.stats import classification_metrics

        gold = [self._canonical(t) for t in targets]
        predicted = [s.label or OTHER_LABEL for s in scores]
        labels = list(self.labels) if self.labels is not None else sorted(set(gold) | set(self._label_set))
        return classification_metrics(gold, predicted, labels=labels)

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(labels={self.labels!r})>"


@_builtin
def classification(
    labels: Sequence[str] | None = None, *, ignore_case: bool = True, name: str = "classification"
) -> ClassificationEvaluator:
    """Classification accuracy with per-class precision, recall, F1 and a confusion matrix.

    ``labels``: the label set (default: the distinct targets of the evaluated examples).
    """
    return ClassificationEvaluator(labels, ignore_case=ignore_case, name=name)


DEFAULT_RUBRIC = (
    "The answer is correct when it states the same conclusion as the reference answer. Wording, length and "
    "style do not matter; a different or missing conclusion is incorrect."
)

_JUDGE_TEMPLATE = """You are grading an AI assistant's answer against a reference answer.

Rubric:
{rubric}

Conversation given to the assistant:
{prompt}

Reference answer:
{target}

Assistant's answer:
{output}

Think briefly, then end with one line that is exactly "VERDICT: PASS" or "VERDICT: FAIL"."""

_VERDICT = re.compile(r"VERDICT\s*:\s*(PASS|FAIL)", re.IGNORECASE)


class LLMJudge:
    """A model grades each answer with a rubric; its calls go through the evaluation engine and cache."""

    def __init__(self, rubric: str, *, model: str, client: Any, max_tokens: int, name: str) -> None:
        self.name = name
        self.rubric = rubric
        self.model = model
        self.client = client
        self.max_tokens = max_tokens
        self.params: dict[str, Any] = {"rubric": rubric, "model": model, "max_tokens": max_tokens}
        self._judge: JudgeContext | None = None

    def bind(self, judge: JudgeContext) -> None:
        """Called by the engine before scoring: gives access to its rate limiter, retries and cache."""
        self._judge = judge

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        if self._judge is None:
            raise EvaluationError(
                f"evaluator {self.name!r} needs the evaluation engine; run it via evaluate()"
            )
        prompt = "\n".join(
            f"[{m.get('role')}] {_content_text(m.get('content'))}" for m in example.prompt_messages()
        )
        messages = [
            {
                "role": "user",
                "content": _JUDGE_TEMPLATE.format(
                    rubric=self.rubric, prompt=prompt, target=target, output=output
                ),
            }
        ]
        reply = await self._judge.complete(
            self.model, messages, client=self.client, max_tokens=self.max_tokens
        )
        verdicts = _VERDICT.findall(reply)
        if not verdicts:
            return Score(value=None, binary=True, explanation=f"no verdict in judge reply: {reply[-200:]!r}")
        passed = verdicts[-1].upper() == "PASS"
        return Score(value=1.0 if passed else 0.0, binary=True, explanation=reply.strip()[-500:])

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(model={self.model!r})>"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@_builtin
def llm_judge(
    rubric: str = DEFAULT_RUBRIC,
    *,
    model: str = "gpt-4o-mini",
    client: Any = None,
    max_tokens: int = 512,
    name: str = "llm_judge",
) -> LLMJudge:
    """A pass/fail grade from ``model`` following ``rubric`` (default: same conclusion as the reference).

    ``client`` (sync or async OpenAI client) defaults to the evaluation's client.
    """
    return LLMJudge(rubric, model=model, client=client, max_tokens=max_tokens, name=name)


BUILTIN_EVALUATORS: dict[str, Callable[..., Any]] = {
    "exact_match": exact_match,
    "contains": contains,
    "regex": regex,
    "json_valid": json_valid,
    "json_match": json_match,
    "classification": classification,
    "llm_judge": llm_judge,
}


def resolve_evaluators(items: Any) -> list[Any]:
    """Normalise the ``evaluators=`` argument: names, factories, functions and Evaluator objects."""
    if items is None:
        items = [exact_match]
    if not isinstance(items, (list, tuple)):
        items = [items]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            factory = BUILTIN_EVALUATORS.get(item)
            if factory is None:
                raise EvaluationError(
                    f"unknown evaluator {item!r}; built-ins are {', '.join(BUILTIN_EVALUATORS)}"
                )
            out.append(factory())
        elif getattr(item, "_finetune_wb_factory", False):
            out.append(item())
        elif hasattr(item, "ascore") and hasattr(item, "name"):
            if not hasattr(item, "params"):
                item.params = {}
            out.append(item)
        elif callable(item):
            out.append(FunctionEvaluator(item))
        else:
            raise EvaluationError(f"not an evaluator: {item!r} (pass a function, a name or an Evaluator)")
    names = [e.name for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EvaluationError(f"two evaluators share the name(s) {dupes}; give one a different name=")
    return out
