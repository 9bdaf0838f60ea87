"""One streaming pass over a file of examples, keeping sketches instead of texts.

Per example the pass keeps its line, four 64-bit digests (the whole conversation, the system text plus
prompt, the prompt alone, the answer), the answer's length, and the prompt's MinHash band keys and
signature (see :mod:`.minhash`): ~170 bytes per example in memory whatever the size of the texts, plus 4
bytes a word in a temporary file. Labels and system prompt variants are counted only while there are few
of them; secrets are scanned message by message (most messages only pass a few substring tests), and a
suspicious text that repeats (a system prompt in every example) is scanned once.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

from finetune_wb.validation.quality.extract import digest, normalise, view_of
from finetune_wb.validation.quality.minhash import Sketches
from finetune_wb.validation.quality.sensitive import Hit, Scanner

MAX_SYSTEM_VARIANTS = 1000
LINES_PER_VARIANT = 50
SCAN_CACHE = 4096


class Collected:
    """What one pass keeps about one file."""

    def __init__(
        self,
        *,
        sketches: Sketches | None,
        scanner: Scanner | None,
        max_labels: int,
        max_label_length: int,
        max_hits: int,
    ) -> None:
        self.lines = array("I")
        self.conv = array("Q")
        self.prompt = array("Q")  # system + prompt: the same input
        self.prompt_only = array("Q")  # the prompt without the system text (leakage)
        self.answer = array("Q")
        self.answer_len = array("I")
        self.empty_prompt = 0
        self.sketches = sketches
        self.scanner = scanner
        self.max_labels = max_labels
        self.max_label_length = max_label_length
        self.labels: dict[str, int] | None = {}
        self.label_lines: dict[str, int] = {}  # label -> first line (for unseen labels in test)
        self.systems: dict[int, list[Any]] | None = {}  # digest -> [count, first lines]
        self.hits: list[tuple[int, str, list[tuple[int, Hit]]]] = []  # (line, code, [(message, hit)])
        self.hit_counts: dict[str, int] = {}
        self.max_hits = max_hits
        self._scanned: dict[str, list[Hit]] = {}
        self._system_digest: dict[str, int] = {}

    @property
    def n(self) -> int:
        return len(self.lines)

    def _scan(self, line: int, texts: list[tuple[int, str]], system: str) -> None:
        assert self.scanner is not None
        suspicious = self.scanner.suspicious
        found: dict[str, list[tuple[int, Hit]]] | None = None
        cache = self._scanned
        for index, text in texts:
            # The system text repeats (looked up first); most other texts pass a few substring tests.
            hits = cache.get(text) if text == system else None
            if hits is None and not suspicious(text):
                if text == system and len(cache) < SCAN_CACHE:
                    cache[text] = []
                continue
            if hits is None:
                hits = self.scanner.scan(text)
                if len(cache) >= SCAN_CACHE:
                    cache.clear()
                cache[text] = hits
            for hit in hits:
                if found is None:
                    found = {}
                found.setdefault(hit.code, []).append((index, hit))
        if found is None:
            return
        for code, hits_of in found.items():
            self.hit_counts[code] = self.hit_counts.get(code, 0) + 1
            if len(self.hits) < self.max_hits:
                self.hits.append((line, code, hits_of))

    def add(self, line: int, obj: Any) -> None:
        view = view_of(obj)
        if view is None:
            return
        row = len(self.lines)
        system = view.system
        sd = self._system_digest.get(system)
        if sd is None:
            sd = digest(normalise(system))
            if len(self._system_digest) < SCAN_CACHE:
                self._system_digest[system] = sd
        prompt = normalise(view.prompt)
        pd = digest(prompt)
        answer = normalise(view.answer)
        ad = digest(answer)
        self.lines.append(line)
        self.prompt_only.append(pd)
        self.prompt.append(hash((sd, pd)) & 0xFFFFFFFFFFFFFFFF)
        self.answer.append(ad)
        self.conv.append(hash((sd, pd, ad)) & 0xFFFFFFFFFFFFFFFF)
        self.answer_len.append(min(len(view.answer), 0xFFFFFFFF))
        if not prompt:
            self.empty_prompt += 1
        elif self.sketches is not None:
            self.sketches.add(row, prompt)
        labels = self.labels
        if labels is not None:
            if len(answer) > self.max_label_length or (
                answer not in labels and len(labels) >= self.max_labels
            ):
                self.labels = None
            else:
                labels[answer] = labels.get(answer, 0) + 1
                self.label_lines.setdefault(answer, line)
        systems = self.systems
        if systems is not None and system:
            entry = systems.get(sd)
            if entry is None:
                if len(systems) >= MAX_SYSTEM_VARIANTS:
                    self.systems = None
                else:
                    systems[sd] = [1, [line]]
            else:
                entry[0] += 1
                if len(entry[1]) < LINES_PER_VARIANT:
                    entry[1].append(line)
        if self.scanner is not None:
            self._scan(line, view.texts, view.system)

    def feed(self, records: Iterable[tuple[int, Any]]) -> Collected:
        for line, obj in records:
            self.add(line, obj)
        return self.finish()

    def finish(self) -> Collected:
        """Called once, after the last example: computes the last sketches and frees the caches."""
        if self.sketches is not None:
            self.sketches.finish()
        self._scanned = {}
        self._system_digest = {}
        return self
