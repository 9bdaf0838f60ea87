"""Groups of examples that must stay on the same side of a train/test split.

``split_examples(examples, train_fraction=0.8, groups=near_duplicate_groups(examples))`` puts exact and
near-duplicate prompts together, so the test set cannot hold a copy of a training prompt (the data stage
takes the groups as plain keys and knows nothing about MinHash).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from finetune_wb.validation.quality.check import DEFAULT_THRESHOLD
from finetune_wb.validation.quality.extract import digest, iter_examples, normalise, view_of
from finetune_wb.validation.quality.minhash import Sketches, components, similar_pairs


def near_duplicate_groups(
    examples: Iterable[Any], *, threshold: float = DEFAULT_THRESHOLD, near: bool = True
) -> list[int]:
    """One group id per example (in order): examples with the same normalised prompt, or (``near``) a
    prompt estimated at least ``threshold`` similar, share an id; every other example has its own."""
    items = list(iter_examples(list(examples)))
    sketches = Sketches(threshold) if near else None
    by_prompt: dict[int, int] = {}
    parent: list[int] = []
    for row, (_, obj) in enumerate(items):
        view = view_of(obj)
        prompt = normalise(view.prompt) if view is not None else ""
        if not prompt:
            parent.append(row)
            continue
        parent.append(by_prompt.setdefault(digest(prompt), row))
        if sketches is not None:
            sketches.add(row, prompt)
    pairs = [(min(r, p), max(r, p)) for r, p in enumerate(parent) if p != r]
    if sketches is not None:
        pairs += similar_pairs(sketches.finish())
        sketches.close()
    roots = components(len(items), pairs)
    return [roots.get(row, row) for row in range(len(items))]
