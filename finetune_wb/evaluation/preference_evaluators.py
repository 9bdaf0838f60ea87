"""``preference``: for preference (DPO) test data, is the answer closer to the preferred or the
non-preferred output?

Each answer is compared with both outputs of its DPO line: its text (and its tool calls, written as
``name({...})``) against theirs, by token F1 over lower-cased words and punctuation. Closer to the preferred
output scores 1 (a win), closer to the non-preferred 0 (a loss), equally close 0.5 (a tie). The metric is the
win rate, with its bootstrap interval; between two models the comparison is paired over the lines both
answered. Any other evaluator (``llm_judge`` against the preferred output, say) can replace it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.builtin_evaluators import builtin
from finetune_wb.evaluation.evaluators import Score
from finetune_wb.evaluation.tool_calls import calls_of_message, render_calls

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = ["PreferenceEvaluator", "preference", "token_f1"]

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def token_f1(a: str, b: str) -> float:
    """F1 of the bags of lower-cased word and punctuation tokens of ``a`` and ``b`` (1.0 when both empty)."""
    ta, tb = Counter(_TOKEN.findall(a.lower())), Counter(_TOKEN.findall(b.lower()))
    if not ta and not tb:
        return 1.0
    common = sum((ta & tb).values())
    if not common:
        return 0.0
    precision, recall = common / sum(ta.values()), common / sum(tb.values())
    return 2 * precision * recall / (precision + recall)


def _as_text(text: str, calls: Sequence[dict[str, str]] | None) -> str:
    rendered = render_calls(calls)
    return f"{text}\n{rendered}".strip() if rendered else text


class PreferenceEvaluator:
    """The ``preference`` evaluator; build it with :func:`preference`."""

    def __init__(self, *, name: str) -> None:
        self.name = name
        self.params: dict[str, Any] = {"similarity": "token_f1"}

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        return self.score_text(output, example)

    async def ascore_answer(self, answer: Any, example: ChatExample) -> Score:
        return self.score_text(_as_text(answer.output or "", answer.tool_calls), example)

    def score_text(self, answer: str, example: ChatExample) -> Score:
        rejected = getattr(example, "non_preferred_output", None)
        if not rejected:
            return Score(value=None, explanation="not a preference (DPO) example: no non-preferred output")
        last = max(i for i, m in enumerate(example.messages) if m.role == "assistant")
        chosen_msg = example.messages[last]
        preferred = _as_text(chosen_msg.text, calls_of_message(chosen_msg))
        non_preferred = _as_text(rejected[0].text, calls_of_message(rejected[0]))
        if preferred == non_preferred:
            return Score(value=None, explanation="the preferred and non-preferred outputs are the same")
        to_p, to_n = token_f1(answer, preferred), token_f1(answer, non_preferred)
        why = f"similarity to preferred {to_p:.2f}, to non-preferred {to_n:.2f}"
        if to_p > to_n:
            return Score(value=1.0, binary=True, label="preferred", explanation=why)
        if to_p < to_n:
            return Score(value=0.0, binary=True, label="non_preferred", explanation=why)
        return Score(value=0.5, label="tie", explanation=why)

    def aggregate(self, scores: Sequence[Score], targets: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
        """Wins, losses, ties and the win rate (ties count half) of one model's scored lines."""
        wins = sum(1 for s in scores if s.value == 1.0)
        losses = sum(1 for s in scores if s.value == 0.0)
        ties = len(scores) - wins - losses
        return {
            "win_rate": (wins + 0.5 * ties) / len(scores) if scores else None,
            "wins": wins,
            "losses": losses,
            "ties": ties,
        }

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(token_f1)>"


@builtin
def preference(*, name: str = "preference") -> PreferenceEvaluator:
    """For DPO test data: 1 when the answer is closer to the preferred than to the non-preferred output
    (token F1), 0 when closer to the non-preferred, 0.5 when equally close; the mean is the win rate. The
    default evaluator of a DPO file."""
    return PreferenceEvaluator(name=name)
