"""The models of an evaluation: :class:`ModelTarget`, what ``models=`` accepts, and the labels in reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from finetune_wb.errors import EvaluationError

__all__ = ["ModelTarget", "ModelsArg", "RequestCounts", "ResolvedModel", "resolve_targets", "unique_labels"]


@dataclass
class ModelTarget:
    """A model to evaluate; ``client`` (sync or async OpenAI client) lets each model live on its own server.

    ``label`` names the model in reports and W&B (default: ``name``).
    """

    name: str
    client: Any = None
    label: str | None = None

    @property
    def display(self) -> str:
        return self.label or self.name


ModelsArg = Union[
    str,
    ModelTarget,
    "tuple[str, Any]",
    Sequence[Union[str, ModelTarget, "tuple[str, Any]"]],
    Mapping[str, Any],
]
"""What ``models=`` takes: a name, a ModelTarget, a (name, client) pair, a list of those, or {name: client}."""


@dataclass
class RequestCounts:
    """What the requests of one model cost this run (the report's ``n_requests``, ``n_retries``, ...)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@dataclass
class ResolvedModel:
    """One model of a running evaluation: its target, unique label, async client and request counts."""

    target: ModelTarget
    label: str
    aclient: Any
    base_url: str
    counts: RequestCounts = field(default_factory=RequestCounts)


def resolve_targets(models: Any) -> list[ModelTarget]:
    """``models=``: a name, a ModelTarget, a ``(name, client)`` pair, a list of those, or ``{name: client}``."""
    if isinstance(models, dict):
        items: list[Any] = [ModelTarget(str(name), client=c) for name, c in models.items()]
    elif isinstance(models, (str, ModelTarget)) or _is_pair(models):
        items = [models]
    else:
        items = list(models or [])
    if not items:
        raise EvaluationError("models= is empty; pass a model name, a list of names or ModelTarget objects")
    out: list[ModelTarget] = []
    for m in items:
        if isinstance(m, ModelTarget):
            out.append(m)
        elif isinstance(m, str):
            out.append(ModelTarget(m))
        elif _is_pair(m):
            out.append(ModelTarget(m[0], client=m[1]))
        else:
            raise EvaluationError(
                f"models= item {m!r} is not a model: pass a name, (name, client) or ModelTarget(name, client=...)"
            )
    return out


def _is_pair(obj: Any) -> bool:
    return (
        isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and not isinstance(obj[1], str)
    )


def unique_labels(targets: Sequence[ModelTarget]) -> list[str]:
    """Each target's display name; a repeated one gets ``#2``, ``#3``, ... (the same model twice is allowed)."""
    labels: list[str] = []
    for t in targets:
        label, n = t.display, 2
        while label in labels:
            label = f"{t.display}#{n}"
            n += 1
        labels.append(label)
    return labels
