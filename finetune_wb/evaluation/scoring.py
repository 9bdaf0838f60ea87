"""Running the evaluators over every answered row (concurrently, since some of them call models)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.evaluators import Score, to_score

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.answering import Answer
    from finetune_wb.schema import ChatExample


@dataclass
class Scored:
    """``scores[m][i][evaluator name]`` for answered rows; ``failures`` lists evaluator exceptions."""

    scores: list[list[dict[str, Score]]]
    failures: list[str] = field(default_factory=list)


async def score_all(
    evaluators: Sequence[Any], examples: Sequence[ChatExample], answers: Sequence[Sequence[Answer]]
) -> Scored:
    """Every evaluator on every answered row, concurrently; an evaluator's exception leaves its row unscored."""
    scores: list[list[dict[str, Score]]] = [[{} for _ in examples] for _ in answers]
    failures: list[str] = []

    async def one(m: int, i: int, ev: Any) -> None:
        answer = answers[m][i]
        if answer.output is None:
            return  # unanswered: not scored, never counted as wrong
        try:
            if hasattr(ev, "ascore_answer"):  # wants the whole answer (tool calls, refusal), not only text
                result = await ev.ascore_answer(answer, examples[i])
            else:
                result = await ev.ascore(answer.output, examples[i].target, examples[i])
            score = to_score(result, name=ev.name)
        except Exception as exc:
            failures.append(f"{ev.name}\x00{i}\x00{type(exc).__name__}: {exc}")
            score = Score(value=None, explanation=f"evaluator error: {type(exc).__name__}: {exc}"[:500])
        scores[m][i][ev.name] = score

    await asyncio.gather(
        *(one(m, i, ev) for m in range(len(answers)) for i in range(len(examples)) for ev in evaluators)
    )
    return Scored(scores=scores, failures=_summarise(failures))


def _summarise(failures: list[str]) -> list[str]:
    """One line per failing evaluator: how many rows, and the first error."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for entry in failures:
        name, index, message = entry.split("\x00", 2)
        by_name.setdefault(name, []).append((index, message))
    return [
        f"evaluator {name!r} raised on {len(items)} row(s) (scored as unscorable, not as wrong); "
        f"first, example {items[0][0]}: {items[0][1]}"
        for name, items in by_name.items()
    ]
