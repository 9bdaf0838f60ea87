"""Replacement candidates without fine-tuning: a model plus a prompt strategy built from the training file.

A candidate spec is ``MODEL``, ``MODEL+fewshot:K`` or ``MODEL+retrieval:K``:

* plain: the golden prompt as it is;
* ``fewshot:K`` (fixed): the fine-tune's system prompt and the same K training examples before every prompt:
  the most representative ones, balanced by answer (round-robin over the answers, most frequent first; within
  an answer, the examples closest to that answer's centroid);
* ``retrieval:K`` (per prompt): the K training examples most similar to the prompt.

Similarity is the cosine of TF-IDF vectors over lower-cased words and word pairs of the user messages
(numpy, an inverted index: no model, no network). The system prompt is the prompt's own when it has one,
else the most common system message of the training file.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from finetune_wb.migration.errors import MigrationInputError

Strategy = Literal["plain", "fewshot", "retrieval"]
_SPEC = re.compile(r"^(?P<model>[^+\s]+)(?:\+(?P<strategy>fewshot|retrieval):(?P<k>\d+))?$")
_WORD = re.compile(r"\w+")
MAX_K = 64


@dataclass(frozen=True)
class CandidateSpec:
    """A parsed candidate spec; :attr:`name` is how reports name it (``gpt-5-mini+fewshot:8``)."""

    model: str
    strategy: Strategy = "plain"
    k: int = 0

    @property
    def name(self) -> str:
        return self.model if self.strategy == "plain" else f"{self.model}+{self.strategy}:{self.k}"


def parse_candidate(spec: str) -> CandidateSpec:
    """``MODEL``, ``MODEL+fewshot:K`` or ``MODEL+retrieval:K`` (1 <= K <= 64); a clear error otherwise."""
    text = spec.strip()
    match = _SPEC.match(text)
    if not match:
        raise MigrationInputError(
            f"candidate spec {spec!r} does not parse; use MODEL, MODEL+fewshot:K or MODEL+retrieval:K "
            "(e.g. gpt-4.1-mini+fewshot:8)"
        )
    strategy = match.group("strategy")
    if strategy is None:
        return CandidateSpec(match.group("model"))
    k = int(match.group("k"))
    if not 1 <= k <= MAX_K:
        raise MigrationInputError(f"candidate spec {spec!r}: K must be between 1 and {MAX_K}, got {k}")
    return CandidateSpec(match.group("model"), strategy, k)  # type: ignore[arg-type]


def _user_text(messages: list[dict[str, Any]]) -> str:
    from finetune_wb.schema import content_text

    return "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")


def _terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass
class _Index:
    """TF-IDF vectors of the training prompts, and postings term -> (example ids, weights)."""

    idf: dict[str, float]
    vectors: list[dict[str, float]]
    postings: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, texts: list[str]) -> _Index:
        import numpy as np

        counts = [Counter(_terms(t)) for t in texts]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(texts)
        idf = {t: math.log((1 + n) / (1 + d)) + 1.0 for t, d in df.items()}
        vectors = [_normalised({t: (1 + math.log(v)) * idf[t] for t, v in c.items()}) for c in counts]
        lists: dict[str, tuple[list[int], list[float]]] = {}
        for i, vec in enumerate(vectors):
            for t, w in vec.items():
                ids, ws = lists.setdefault(t, ([], []))
                ids.append(i)
                ws.append(w)
        postings = {t: (np.asarray(ids), np.asarray(ws)) for t, (ids, ws) in lists.items()}
        return cls(idf, vectors, postings)

    def vector(self, text: str) -> dict[str, float]:
        c = Counter(_terms(text))
        return _normalised({t: (1 + math.log(v)) * self.idf[t] for t, v in c.items() if t in self.idf})

    def similar(self, text: str, k: int) -> list[int]:
        """The ``k`` most similar training examples (ties: the earlier one)."""
        import numpy as np

        scores = np.zeros(len(self.vectors))
        for t, w in self.vector(text).items():
            ids, ws = self.postings[t]
            scores[ids] += w * ws
        order = np.lexsort((np.arange(len(scores)), -scores))
        return [int(i) for i in order[:k]]


def _normalised(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vec.values()))
    return {t: w / norm for t, w in vec.items()} if norm else {}


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _looks_like_labels(answers: list[str]) -> bool:
    distinct = len(set(answers))
    return distinct <= 50 and distinct * 2 <= len(answers)


@dataclass
class TrainingPool:
    """The fine-tune's training examples, ready for few-shot selection."""

    prompts: list[list[dict[str, Any]]]
    answers: list[str]
    system: str | None
    source: str
    _index: _Index | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> TrainingPool:
        from finetune_wb.migration.golden import read_prompts

        rows = read_prompts(path)
        usable = [r for r in rows if r.reference is not None]
        if not usable:
            raise MigrationInputError(
                f"{path}: no line ends with an assistant answer; few-shot needs answers"
            )
        systems = Counter(
            str(m.get("content"))
            for r in usable
            for m in r.messages[:1]
            if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str)
        )
        system = systems.most_common(1)[0][0] if systems else None
        prompts = [[m for m in r.messages if m.get("role") not in ("system", "developer")] for r in usable]
        return cls(prompts, [r.reference or "" for r in usable], system, str(path))

    @property
    def index(self) -> _Index:
        if self._index is None:
            self._index = _Index.build([_user_text(p) for p in self.prompts])
        return self._index

    def representative(self, k: int) -> list[int]:
        """The fixed few-shot set: ``k`` examples, round-robin over answers, nearest their centroid first."""
        index = self.index
        keys = [a.strip().casefold() for a in self.answers]
        groups: dict[str, list[int]] = {}
        if _looks_like_labels(keys):
            for i, key in enumerate(keys):
                groups.setdefault(key, []).append(i)
        else:
            groups[""] = list(range(len(keys)))
        ranked: list[list[int]] = []
        for members in sorted(groups.values(), key=lambda m: (-len(m), m[0])):
            centroid: dict[str, float] = {}
            for i in members:
                for t, w in index.vectors[i].items():
                    centroid[t] = centroid.get(t, 0.0) + w
            ranked.append(sorted(members, key=lambda i: (-_dot(index.vectors[i], centroid), i)))
        chosen: list[int] = []
        depth = 0
        while len(chosen) < min(k, len(keys)):
            for members in ranked:
                if depth < len(members) and len(chosen) < k:
                    chosen.append(members[depth])
            depth += 1
        return chosen


@dataclass
class Candidate:
    """A candidate ready to ask: its spec and, for few-shot strategies, its training pool."""

    spec: CandidateSpec
    pool: TrainingPool | None = None
    _fixed: list[int] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def shots_for(self, messages: list[dict[str, Any]]) -> list[int]:
        """The training examples shown before this prompt (none for a plain candidate)."""
        if self.spec.strategy == "plain" or self.pool is None:
            return []
        if self.spec.strategy == "fewshot":
            if self._fixed is None:
                self._fixed = self.pool.representative(self.spec.k)
            return self._fixed
        return self.pool.index.similar(_user_text(messages), self.spec.k)

    def messages_for(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The request's messages: system prompt, the shots as user/assistant turns, then the prompt."""
        if self.spec.strategy == "plain" or self.pool is None:
            return list(messages)
        own_system = [m for m in messages if m.get("role") in ("system", "developer")]
        rest = [m for m in messages if m.get("role") not in ("system", "developer")]
        system = own_system or ([{"role": "system", "content": self.pool.system}] if self.pool.system else [])
        shots: list[dict[str, Any]] = []
        for i in self.shots_for(messages):
            shots.extend(self.pool.prompts[i])
            shots.append({"role": "assistant", "content": self.pool.answers[i]})
        return [*system, *shots, *rest]


def build_candidates(specs: list[str | CandidateSpec], *, train: str | Path | None = None) -> list[Candidate]:
    """Parse every spec and load the training file once when a few-shot strategy needs it."""
    parsed = [s if isinstance(s, CandidateSpec) else parse_candidate(s) for s in specs]
    if not parsed:
        raise MigrationInputError("no candidate given; pass at least one (MODEL, MODEL+fewshot:K, ...)")
    names = [p.name for p in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MigrationInputError(f"candidate(s) {dupes} given more than once")
    needs = [p.name for p in parsed if p.strategy != "plain"]
    pool = None
    if needs:
        if train is None:
            raise MigrationInputError(
                f"candidate(s) {needs} need the fine-tune's training file for their examples; pass train= "
                "(--train FILE)"
            )
        pool = TrainingPool.from_file(train)
    return [Candidate(p, pool if p.strategy != "plain" else None) for p in parsed]
