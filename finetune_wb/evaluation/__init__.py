"""Evaluation of fine-tuned models against their baselines: engine, evaluators, statistics, report.

``evaluate(examples, models=[fine_tune, baseline])`` asks every model every prompt (async, rate-limited,
retried, cached in SQLite), scores the answers with evaluators, and returns an :class:`EvalReport` with
confidence intervals and paired significance tests. See ``docs/evaluation.md``.

Submodules import their heavy dependencies (openai, numpy, pandas, wandb) only when used.
"""

from __future__ import annotations

from finetune_wb.evaluation.builtin_evaluators import (
    classification,
    contains,
    exact_match,
    json_match,
    json_valid,
    llm_judge,
    regex,
)
from finetune_wb.evaluation.engine import ModelTarget, aevaluate, evaluate
from finetune_wb.evaluation.evaluators import Evaluator, Score, evaluator
from finetune_wb.evaluation.report import EvalReport

__all__ = [
    "EvalReport",
    "Evaluator",
    "ModelTarget",
    "Score",
    "aevaluate",
    "classification",
    "contains",
    "evaluate",
    "evaluator",
    "exact_match",
    "json_match",
    "json_valid",
    "llm_judge",
    "regex",
]
