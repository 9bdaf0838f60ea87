"""What a model id says about itself: fine-tune or base, its base model, checkpoint or not, whose id shape.

One place for the id shapes the library meets, so tokenizer choice, pricing, lineage, retirement dates and
reports agree:

- OpenAI fine-tunes: ``ft:<base>:<org>:<suffix>:<id>`` (suffix may be empty) and their checkpoints
  ``ft:<base>:<org>:<suffix>:<id>:ckpt-step-<N>``;
- Azure OpenAI fine-tunes: ``<base>.ft-<hex>`` (optionally ``-<suffix>`` after the hex), and checkpoints
  ``ftchkpt-<hex>`` (which do not name their base model);
- anything else is taken as a base model (or a deployment name, on Azure) and returned unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AZURE_FT = re.compile(r"^(?P<base>.+?)\.ft-(?P<hex>[0-9a-fA-F]{6,})(?:-(?P<suffix>[A-Za-z0-9_.-]+))?$")
_AZURE_CHECKPOINT = re.compile(r"^ftchkpt-[0-9a-fA-F]{6,}$")
_OPENAI_CHECKPOINT = re.compile(r":ckpt-step-(?P<step>\d+)$")


@dataclass(frozen=True)
class ModelId:
    """A parsed model id. ``base`` is None when the id does not say (an Azure checkpoint id)."""

    raw: str
    base: str | None
    fine_tuned: bool
    checkpoint: bool
    shape: str
    """``"openai-ft"``, ``"openai-checkpoint"``, ``"azure-ft"``, ``"azure-checkpoint"`` or ``"base"``."""
    suffix: str | None = None
    step: int | None = None


def parse_model_id(model: str) -> ModelId:
    """Parse any model id; never raises (an unknown shape is a base model)."""
    name = model.strip()
    if name.startswith("ft:"):
        parts = name.split(":")
        base = parts[1] if len(parts) > 1 and parts[1] else None
        suffix = parts[3] if len(parts) > 3 and parts[3] else None
        step_match = _OPENAI_CHECKPOINT.search(name)
        if step_match:
            return ModelId(name, base, True, True, "openai-checkpoint", suffix, int(step_match.group("step")))
        return ModelId(name, base, True, False, "openai-ft", suffix)
    if _AZURE_CHECKPOINT.match(name):
        return ModelId(name, None, True, True, "azure-checkpoint")
    azure = _AZURE_FT.match(name)
    if azure:
        return ModelId(name, azure.group("base"), True, False, "azure-ft", azure.group("suffix"))
    return ModelId(name, name, False, False, "base")


def base_model_of(model: str) -> str:
    """The base model a fine-tune was trained from; the id itself for a base model or an id that does not say.

    ``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` and ``gpt-4o-mini-2024-07-18.ft-0123abcd`` both give
    ``gpt-4o-mini-2024-07-18``.
    """
    parsed = parse_model_id(model)
    return parsed.base if parsed.base is not None else parsed.raw


def is_fine_tuned(model: str) -> bool:
    """Whether ``model`` is a fine-tune (or a checkpoint of one) in OpenAI's or Azure's id shape."""
    return parse_model_id(model).fine_tuned
