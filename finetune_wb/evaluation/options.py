"""How an evaluation runs: :class:`EvalOptions`, the one list of its settings, their types and defaults.

``evaluate``, ``aevaluate`` and ``FineTuneSession.evaluate`` take these settings either as one object
(``options=EvalOptions(concurrency=8)``) or as keyword arguments (``concurrency=8``), which are validated
into the object; they forward the object, never the list. The keyword arguments are typed for mypy by
:class:`EvalKwargs` (and :class:`SessionEvalKwargs`, what a session lets its caller set), which mirror the
model's fields for type checkers only; a test keeps them in step with :class:`EvalOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError, field_validator

from finetune_wb._retry import RetryPolicy
from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation.batch.settings import BatchOptions

__all__ = ["DEFAULT_CONCURRENCY", "EvalKwargs", "EvalOptions", "SessionEvalKwargs"]

DEFAULT_CONCURRENCY = 64
"""Requests in flight by default. A pipe 16 wide cannot make a 100 ms server more than ~16x faster than a
serial loop; measured on a 2-core machine, 64 beat 32 in every paired run (0.9-1.5 s vs 1.3-2.0 s for 300
answers). Servers that push back get fewer: the AIMD limit halves on each burst of 429s."""


class EvalOptions(BaseModel):
    """The settings of one evaluation (everything but the examples, the models and the evaluators).

    Every field has a default; set only what you change. ``model_fields_set`` tells which were set, so a
    caller that fills in its own values (the session: its client, cache file and W&B run) leaves the
    caller's choices alone.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    client: Any = Field(
        default=None,
        description="the default OpenAI client (sync or async) for models without their own; None builds "
        "one from the environment",
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        description="the most requests in flight (lowered automatically after 429 answers); None means the "
        "default",
    )
    rpm: float | None = Field(default=None, description="client-side requests per minute (None: no limit)")
    tpm: float | None = Field(default=None, description="client-side tokens per minute (None: no limit)")
    max_tokens: int = Field(default=256, description="answer length limit (part of the cache key)")
    temperature: float = Field(default=0, description="sampling temperature (part of the cache key)")
    cache: bool | str | Path | None = Field(
        default=True,
        description="True: the default SQLite answer cache in the state directory; a path: that file; "
        "None/False: no cache",
    )
    run: Any = Field(default=None, description="a W&B run to log the evaluation to (never finished here)")
    progress: bool = Field(default=True, description="show a progress bar per model")
    retry: InstanceOf[RetryPolicy] | None = Field(
        default=None,
        description="the retry policy of each request (default: 8 attempts, honouring retry-after)",
    )
    seed: int = Field(default=0, description="seed of the bootstrap resampling")
    prices: dict[str, tuple[float, float]] | None = Field(
        default=None,
        description="{model prefix: (USD per 1M input tokens, USD per 1M output tokens)} overrides of the "
        "built-in price list",
    )
    lineage: Sequence[Any] = Field(
        default=(),
        description="extra artifacts (e.g. the fine-tuned model's) to record as inputs of the W&B run",
    )
    mode: Literal["sync", "batch"] = Field(
        default="sync",
        description="'sync': one request per row; 'batch': through the Batch API at half the price (answers "
        "within 24 h; resumable: run again to collect); see the docs page, 'Batch mode'",
    )
    batch: BatchOptions | None = Field(
        default=None, description="batch mode's settings (shard limits, wait, fallback, discount)"
    )

    tool_choice: Any = Field(
        default=None,
        description="sent with every request that has tools: 'auto', 'none', 'required', a function name, or "
        "the API's object (part of the cache key)",
    )
    response_format: Any = Field(
        default=None,
        description="'json_object', a JSON Schema (dict, JSON text or .json path: sent as json_schema) or the "
        "API's response_format object; sent with every request (part of the cache key)",
    )
    turns: Literal["last", "all"] = Field(
        default="last",
        description="'last': the prompt is everything before the last assistant message; 'all': every "
        "assistant message is evaluated with the history before it (reported per turn)",
    )

    @field_validator("concurrency", mode="before")
    @classmethod
    def _default_concurrency(cls, value: Any) -> Any:
        return DEFAULT_CONCURRENCY if value is None else value

    @classmethod
    def merged(
        cls, options: EvalOptions | None, overrides: Mapping[str, Any], *, caller: str = "evaluate"
    ) -> EvalOptions:
        """``options`` (default: all defaults) with the keyword ``overrides`` of ``caller`` validated in.

        An unknown keyword is a :class:`TypeError` naming the accepted ones; a value of the wrong type an
        :class:`~finetune_wb.errors.EvaluationError`.
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {unknown}; its options are "
                f"{', '.join(cls.model_fields)} (see EvalOptions)"
            )
        base = options if options is not None else cls()
        if not overrides:
            return base
        given = {name: getattr(base, name) for name in base.model_fields_set}
        try:
            return cls.model_validate({**given, **overrides})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})" for e in exc.errors()
            )
            raise EvaluationError(f"{caller}(): invalid option(s): {problems}") from None


class SessionEvalKwargs(TypedDict, total=False):
    """The :class:`EvalOptions` that ``FineTuneSession.evaluate`` takes as keywords (for type checkers).

    The session sets ``cache``, ``run`` and ``lineage`` itself (its cache file, its W&B eval run).
    """

    client: Any
    concurrency: int | None
    rpm: float | None
    tpm: float | None
    max_tokens: int
    temperature: float
    progress: bool
    retry: RetryPolicy | None
    seed: int
    prices: dict[str, tuple[float, float]] | None
    tool_choice: Any
    response_format: Any
    turns: Literal["last", "all"]
    mode: Literal["sync", "batch"]
    batch: BatchOptions | None


class EvalKwargs(SessionEvalKwargs, total=False):
    """The :class:`EvalOptions` that ``evaluate`` / ``aevaluate`` take as keywords (for type checkers)."""

    cache: bool | str | Path | None
    run: Any
    lineage: Sequence[Any]


SESSION_OWNED = frozenset(EvalKwargs.__annotations__) - frozenset(SessionEvalKwargs.__annotations__)
"""The options a session sets itself and refuses from its caller."""
