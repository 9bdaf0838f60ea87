"""Evaluation of fine-tuned models against their baselines: evaluators, engine, statistics, report.

``evaluate(examples, models=[fine_tune, baseline])`` asks every model every prompt (async, rate-limited,
retried, cached in SQLite), scores the answers with evaluators, and returns an :class:`EvalReport` with
confidence intervals and paired significance tests; :class:`EvalOptions` holds its settings. See
``docs/evaluation.md``.

The modules, bottom floor first (each imports only the ones before it):

* :mod:`.evaluators` — the :class:`Evaluator` and :class:`JudgeContext` protocols, :func:`evaluator`,
  :class:`Score`; :mod:`.builtin_evaluators` — the built-ins and their registry; :mod:`.tool_calls`,
  :mod:`.json_schemas`, :mod:`.tool_evaluators` (``tool_call_match``), :mod:`.structured_evaluators`
  (``json_schema``, ``json_fields``) and :mod:`.preference_evaluators` (``preference``) — tool calls,
  structured outputs, DPO data; :mod:`.resolution` — evaluators from names, specs, config entries and
  objects;
* :mod:`.options` — :class:`EvalOptions`; :mod:`.targets` — :class:`ModelTarget` and ``models=``;
  :mod:`.limits`, :mod:`.cache`, :mod:`.transport` and :mod:`.answering` — sending a request (pacing,
  retries, the answer cache); :mod:`.requests` — tools and output constraints in a request;
  :mod:`.inputs` and :mod:`.eval_examples` — reading the examples (chat, DPO, one per turn);
* :mod:`.scoring`, :mod:`.stats`, :mod:`.pricing`, :mod:`.report` (the :class:`EvalReport` model and its
  views) and :mod:`.aggregate` (building it); :mod:`.wandb_log` — logging it to a run;
* :mod:`.batch` — batch mode through the Batch API (:class:`BatchOptions`), filling the answer cache;
* :mod:`.engine` — :func:`aevaluate` / :func:`evaluate`, composing all of the above.

Names load lazily; heavy dependencies (openai, numpy, pandas, wandb) only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "BatchOptions": ".batch.settings",
    "BatchSummary": ".batch.settings",
    "EvalOptions": ".options",
    "EvalReport": ".report",
    "Evaluator": ".evaluators",
    "JudgeContext": ".evaluators",
    "ModelTarget": ".targets",
    "Score": ".evaluators",
    "aevaluate": ".engine",
    "classification": ".builtin_evaluators",
    "contains": ".builtin_evaluators",
    "evaluate": ".engine",
    "evaluator": ".evaluators",
    "exact_match": ".builtin_evaluators",
    "json_fields": ".structured_evaluators",
    "json_match": ".builtin_evaluators",
    "json_schema": ".structured_evaluators",
    "json_valid": ".builtin_evaluators",
    "llm_judge": ".builtin_evaluators",
    "preference": ".preference_evaluators",
    "regex": ".builtin_evaluators",
    "tool_call_match": ".tool_evaluators",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.evaluation.batch.settings import (
        BatchOptions as BatchOptions,
        BatchSummary as BatchSummary,
    )
    from finetune_wb.evaluation.builtin_evaluators import (
        classification as classification,
        contains as contains,
        exact_match as exact_match,
        json_match as json_match,
        json_valid as json_valid,
        llm_judge as llm_judge,
        regex as regex,
    )
    from finetune_wb.evaluation.engine import aevaluate as aevaluate, evaluate as evaluate
    from finetune_wb.evaluation.evaluators import (
        Evaluator as Evaluator,
        JudgeContext as JudgeContext,
        Score as Score,
        evaluator as evaluator,
    )
    from finetune_wb.evaluation.options import EvalOptions as EvalOptions
    from finetune_wb.evaluation.preference_evaluators import preference as preference
    from finetune_wb.evaluation.report import EvalReport as EvalReport
    from finetune_wb.evaluation.structured_evaluators import (
        json_fields as json_fields,
        json_schema as json_schema,
    )
    from finetune_wb.evaluation.targets import ModelTarget as ModelTarget
    from finetune_wb.evaluation.tool_evaluators import tool_call_match as tool_call_match
