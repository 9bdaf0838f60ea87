"""The built-in evaluators and their registry.

Each built-in is a factory returning a configured evaluator (``exact_match(ignore_case=False)``); its
arguments are recorded in the report, and passing the factory itself (``exact_match``) uses the defaults.
:func:`builtin` registers a factory in :data:`BUILTIN_EVALUATORS` under its function name; resolving
evaluators by name (:mod:`finetune_wb.evaluation.resolution`, ``--evaluator``, config files) reads that
registry, so a new built-in is usable by name as soon as it is decorated.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation.evaluators import FunctionEvaluator, Score
from finetune_wb.schema import content_text

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.evaluators import JudgeContext
    from finetune_wb.schema import ChatExample

Factory = TypeVar("Factory", bound=Callable[..., Any])

BUILTIN_EVALUATORS: dict[str, Callable[..., Any]] = {}
"""Name -> factory of every built-in evaluator, in the order they were registered (filled by :func:`builtin`)."""


def builtin(factory: Factory) -> Factory:
    """Register ``factory`` as a built-in evaluator under its function name.

    A registered factory is usable by name (``"exact_match"``, ``--evaluator exact_match``) and uncalled
    (``evaluators=[exact_match]`` means its defaults). Registering a name again replaces the factory.
    """
    BUILTIN_EVALUATORS[factory.__name__] = factory
    return factory


def is_builtin_factory(obj: Any) -> bool:
    """True for a registered factory itself (not the evaluator it returns)."""
    return any(obj is factory for factory in BUILTIN_EVALUATORS.values())


# Only trailing punctuation goes: a leading "-" or "$" can be part of the answer ("-5" is not "5").
_TRAILING_PUNCT = string.punctuation + "。！？”’»"


def _normalise(text: str, *, ignore_case: bool, normalize_whitespace: bool, strip_punctuation: bool) -> str:
    out = text.strip()
    if normalize_whitespace:
        out = " ".join(out.split())
    if strip_punctuation:
        out = out.rstrip(_TRAILING_PUNCT + " ")
    if ignore_case:
        out = out.casefold()
    return out


@builtin
def exact_match(
    *,
    ignore_case: bool = True,
    normalize_whitespace: bool = True,
    strip_punctuation: bool = True,
    name: str = "exact_match",
) -> FunctionEvaluator:
    """1 when the answer equals the target after normalising case, whitespace and trailing punctuation
    (each switchable), else 0."""
    opts = {
        "ignore_case": ignore_case,
        "normalize_whitespace": normalize_whitespace,
        "strip_punctuation": strip_punctuation,
    }

    def score(output: str, target: str) -> bool:
        return _normalise(output, **opts) == _normalise(target, **opts)

    return FunctionEvaluator(score, name=name, params=opts)


@builtin
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


@builtin
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


@builtin
def json_valid(*, strip_fences: bool = True, name: str = "json_valid") -> FunctionEvaluator:
    """1 when the answer parses as JSON (optionally inside a Markdown code fence), else 0."""

    def score(output: str) -> bool:
        return _parse_json(output, strip_fences=strip_fences)[0]

    return FunctionEvaluator(score, name=name, params={"strip_fences": strip_fences})


@builtin
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
    """Accuracy per row plus per-class precision/recall/F1, macro and micro averages, a confusion matrix, and
    what the accuracy must beat: the majority-class rate, balanced accuracy and Cohen's kappa (see
    :func:`~finetune_wb.evaluation.stats.classification_metrics`).

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

    def aggregate(self, scores: Sequence[Score], targets: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
        """Per-class metrics, the confusion matrix and the chance-aware scores (majority-class rate, balanced
        accuracy, macro-F1, Cohen's kappa, with ``seed``-ed bootstrap intervals) for one model's scored rows."""
        from finetune_wb.evaluation.stats import classification_metrics

        gold = [self._canonical(t) for t in targets]
        predicted = [s.label or OTHER_LABEL for s in scores]
        labels = list(self.labels) if self.labels is not None else sorted(set(gold) | set(self._label_set))
        return classification_metrics(gold, predicted, labels=labels, seed=seed)

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(labels={self.labels!r})>"


@builtin
def classification(
    labels: Sequence[str] | None = None, *, ignore_case: bool = True, name: str = "classification"
) -> ClassificationEvaluator:
    """Classification accuracy with per-class precision, recall, F1, a confusion matrix, the majority-class
    rate, balanced accuracy, macro-F1 and Cohen's kappa (with 95 % intervals); a model whose accuracy does not
    clearly beat always answering the majority class is flagged (``beats_majority``) and warned about.

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

    async def ascore_answer(self, answer: Any, example: ChatExample) -> Score:
        """Tool calls are shown to the judge as ``name({...})``, the answer's and the reference's."""
        from finetune_wb.evaluation.tool_calls import reference_calls, render_calls

        calls = render_calls(answer.tool_calls)
        output = "\n".join(part for part in (answer.output or "", calls) if part)
        return await self.ascore(output, example.target or render_calls(reference_calls(example)), example)

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        if self._judge is None:
            raise EvaluationError(
                f"evaluator {self.name!r} needs the evaluation engine; run it via evaluate()"
            )
        prompt = "\n".join(
            f"[{m.get('role')}] {content_text(m.get('content'))}" for m in example.prompt_messages()
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


@builtin
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
