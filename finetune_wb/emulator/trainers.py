"""The trainer seam: what trains the emulator's jobs and answers for the models they make.

The server (files, jobs, events, checkpoints, result files, models, chat routes) is the same whatever
trains; a :class:`Trainer` decides which base models a job may name, plays a job forward, and answers chat
requests for the models it made. Two implementations:

- :class:`NearestNeighbourTrainer` (the default): today's clock-driven lifecycle in
  :mod:`finetune_wb.emulator.lifecycle`, whose models answer by nearest neighbour over the training file.
- :class:`~finetune_wb.emulator.trl_trainer.TrlTrainer`: real training of a Hugging Face causal LM with TRL
  and PEFT in a worker process (``finetune-wb serve --trainer trl``; needs ``finetune-wb[local]``).

A trainer that runs a job itself marks its runtime record with ``external=True``: the clock-driven
lifecycle then leaves that job alone (cancel, pause and fail still change its status; the trainer acts
on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from finetune_wb.emulator.state import FINE_TUNABLE_MODELS

if TYPE_CHECKING:
    from finetune_wb.emulator.answerers import Answer
    from finetune_wb.emulator.state import Store


@runtime_checkable
class ChatModel(Protocol):
    """Something that answers a chat request: text, or ``{"tool_calls": [...]}``."""

    def answer(self, messages: list[dict[str, Any]]) -> Answer: ...


@runtime_checkable
class Trainer(Protocol):
    """What trains the jobs of one emulator (see the module docstring)."""

    name: str

    def base_models(self) -> Sequence[str]:
        """Base model names a job may fine-tune (listed by ``GET /v1/models`` too)."""
        ...

    def attach(self, store: Store) -> None:
        """Called once the store is loaded (e.g. to settle jobs a restart interrupted)."""
        ...

    def tick(self, store: Store, job: dict[str, Any], now: float) -> None:
        """Play an unfinished job forward to ``now`` (called with the store lock held)."""
        ...

    def chat_model(self, store: Store, model: str) -> ChatModel | None:
        """The answerer for ``model`` when this trainer serves it, else None (the emulator's own models)."""
        ...

    def close(self) -> None:
        """Stop workers and free what the trainer holds."""
        ...


class NearestNeighbourTrainer:
    """The emulator's default: clock-paced jobs whose models answer by nearest neighbour."""

    name = "nearest-neighbour"

    def base_models(self) -> Sequence[str]:
        return FINE_TUNABLE_MODELS

    def attach(self, store: Store) -> None:
        return None

    def tick(self, store: Store, job: dict[str, Any], now: float) -> None:
        from finetune_wb.emulator import lifecycle

        lifecycle.tick(store, job, now)

    def chat_model(self, store: Store, model: str) -> ChatModel | None:
        return None  # the core's own nearest-neighbour lookup answers

    def close(self) -> None:
        return None


def make_trainer(kind: str, **options: Any) -> Trainer:
    """A trainer by name: ``"nearest-neighbour"`` (alias ``"nn"``) or ``"trl"`` (options go to TrlTrainer)."""
    if kind in ("nearest-neighbour", "nn", "default"):
        return NearestNeighbourTrainer()
    if kind == "trl":
        from finetune_wb.emulator.trl_trainer import TrlTrainer

        return TrlTrainer(**options)
    raise ValueError(f"unknown trainer {kind!r}; use 'nearest-neighbour' or 'trl'")
