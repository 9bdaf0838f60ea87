"""Records -> examples through a Template, and a seeded, stratified train/test split."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from finetune_wb.data.records import iter_records
from finetune_wb.data.template import Template
from finetune_wb.errors import ConfigError
from finetune_wb.schema import ChatExample

T = TypeVar("T")


def build_examples(
    records: Any,
    *,
    template: Template,
    split: str | None = None,
    quoting: int | None = None,
) -> list[ChatExample]:
    """Turn records (list of dicts, DataFrame, Dataset, DatasetDict or a file path) into ChatExamples.

    ``split`` picks one split of a DatasetDict (default: all, in order). ``quoting`` is passed to the csv
    reader for CSV/TSV paths.
    """
    if not isinstance(template, Template):
        raise ConfigError("template must be a finetune_wb.Template")
    return [template.render(rec, where=where) for where, rec in iter_records(records, split, quoting)]


def _label_of(example: Any) -> Hashable:
    target = getattr(example, "target", None)
    if isinstance(target, str):
        return target
    if isinstance(example, Mapping):
        messages = example.get("messages")
        if isinstance(messages, list):
            for msg in reversed(messages):
                if isinstance(msg, Mapping) and msg.get("role") == "assistant":
                    return json.dumps(msg.get("content"), sort_keys=True, default=str)
    return json.dumps(example, sort_keys=True, default=str) if isinstance(example, Mapping) else repr(example)


def _allocate(sizes: list[int], n_train: int) -> list[int]:
    """Per-group train counts: proportional (largest remainder), at least 1 per group when possible."""
    total = sum(sizes)
    quotas = [n_train * s / total for s in sizes]
    alloc = [min(s, math.floor(q)) for s, q in zip(sizes, quotas, strict=True)]
    if n_train >= len(sizes):
        alloc = [max(a, 1) if s > 0 else 0 for a, s in zip(alloc, sizes, strict=True)]
    while sum(alloc) > n_train:  # the minimum of 1 overshot: take from the most over-served group
        i = max((j for j in range(len(sizes)) if alloc[j] > 1), key=lambda j: (alloc[j] - quotas[j], -j))
        alloc[i] -= 1
    while sum(alloc) < n_train:
        i = max(
            (j for j in range(len(sizes)) if alloc[j] < sizes[j]), key=lambda j: (quotas[j] - alloc[j], -j)
        )
        alloc[i] += 1
    return alloc


def _split_groups(
    items: list[T],
    keys: list[Hashable],
    n_train: int,
    rng: random.Random,
    label: Callable[[T], Hashable] | None,
) -> tuple[list[T], list[T]]:
    """Assign whole groups: shuffled, per label of the group's first example when stratified, each label's
    share of ``n_train`` filled greedily with the groups that fit it best."""
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    units = list(members.values())  # in order of first appearance: deterministic
    buckets: dict[str, list[list[int]]] = {}
    for unit in units:
        buckets.setdefault(repr(label(items[unit[0]])) if label else "", []).append(unit)
    names = sorted(buckets)
    for name in names:
        rng.shuffle(buckets[name])
    sizes = [sum(len(u) for u in buckets[name]) for name in names]
    targets = _allocate(sizes, n_train) if sum(sizes) else [0] * len(names)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for name, target in zip(names, targets, strict=True):
        taken = 0
        for unit in buckets[name]:
            if taken + len(unit) <= target or (taken < target and target - taken >= len(unit) / 2):
                train_idx += unit
                taken += len(unit)
            else:
                test_idx += unit
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return [items[i] for i in train_idx], [items[i] for i in test_idx]


def split_examples(
    examples: Sequence[T],
    *,
    n_train: int | None = None,
    train_fraction: float | None = None,
    seed: int = 42,
    stratify: bool = True,
    label: Callable[[T], Hashable] | None = None,
    groups: Sequence[Hashable] | Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Seeded shuffle and split into (train, test), by count (``n_train``) or by ``train_fraction``.

    With ``stratify`` (default) each label (the assistant answer, or ``label(example)``) is split in
    proportion, and every label gets at least one training example when ``n_train`` allows it. The result
    depends only on the seed and the examples' order, so it is the same on every machine.

    ``groups`` (one key per example, or a function of the example) keeps the examples of a group on one
    side: pass ``near_duplicate_groups(examples)`` (from ``finetune_wb.validation.quality``) so that no test
    prompt is a copy of a training prompt. Whole groups are then assigned, so the train size can differ
    from ``n_train`` by less than the largest group.
    """
    items = list(examples)
    n = len(items)
    if (n_train is None) == (train_fraction is None):
        raise ConfigError("give exactly one of n_train or train_fraction")
    if train_fraction is not None:
        if not 0 < train_fraction < 1:
            raise ConfigError(f"train_fraction must be between 0 and 1, got {train_fraction}")
        n_train = round(n * train_fraction)
    assert n_train is not None
    if not 0 <= n_train <= n:
        raise ConfigError(f"n_train must be between 0 and the number of examples ({n}), got {n_train}")
    rng = random.Random(seed)
    if groups is not None:
        keys = [groups(ex) for ex in items] if callable(groups) else list(groups)
        if len(keys) != n:
            raise ConfigError(f"groups has {len(keys)} keys for {n} examples; give one key per example")
        return _split_groups(items, keys, n_train, rng, (label or _label_of) if stratify else None)
    if not stratify or n == 0:
        order = list(range(n))
        rng.shuffle(order)
        return [items[i] for i in order[:n_train]], [items[i] for i in order[n_train:]]
    key = label or _label_of
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(items):
        by_label.setdefault(repr(key(ex)), []).append(i)
    names = sorted(by_label)
    for name in names:
        rng.shuffle(by_label[name])
    alloc = _allocate([len(by_label[name]) for name in names], n_train)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for name, k in zip(names, alloc, strict=True):
        train_idx += by_label[name][:k]
        test_idx += by_label[name][k:]
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return [items[i] for i in train_idx], [items[i] for i in test_idx]
