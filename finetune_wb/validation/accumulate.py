"""What a validation run keeps: issues (a capped list, every one counted) and three integers per example.

The per-example numbers live in compact arrays, so memory stays flat in the size of the examples.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finetune_wb.validation.format_checks import PLAIN_ROLES, Add
from finetune_wb.validation.tokens import (
    TOKENS_PER_EXAMPLE,
    TOKENS_PER_MESSAGE,
    TokenCounter,
)

if TYPE_CHECKING:
    from finetune_wb.validation.report import Severity, ValidationIssue


class IssueCollector:
    """Collects issues, listing at most ``limit`` of them but counting all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.issues: list[tuple[int | None, str, Severity, str]] = []
        self.counts: dict[str, int] = {}
        self.n_errors = 0
        self.n_warnings = 0
        self.omitted = 0

    def add(self, line: int | None, code: str, severity: Severity, message: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1
        if severity == "error":
            self.n_errors += 1
        else:
            self.n_warnings += 1
        if len(self.issues) < self.limit:
            self.issues.append((line, code, severity, message))
        else:
            self.omitted += 1

    def built(self) -> list[ValidationIssue]:
        from finetune_wb.validation.report import ValidationIssue

        return [
            ValidationIssue(line=line, code=code, severity=severity, message=message)
            for line, code, severity, message in self.issues
        ]

    def at(self, line: int | None) -> Add:
        return lambda code, severity, message: self.add(line, code, severity, message)


class SameText:
    """Whether every example so far had the same text in one role; keeps a digest of the first text (and
    its first 60 characters, for the message), never the texts, so memory stays flat."""

    __slots__ = ("digest", "n", "preview", "same")

    def __init__(self) -> None:
        self.digest: bytes | None = None
        self.preview = ""
        self.same = True
        self.n = 0

    def see(self, parts: list[str]) -> None:
        h = hashlib.blake2b(digest_size=16)
        for part in parts:
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        digest = h.digest()
        if self.digest is None:
            self.digest, self.preview = digest, "\n".join(parts)[:60]
        elif digest != self.digest:
            self.same = False
        self.n += 1

    def constant(self) -> bool:
        """Two or more examples, all with the same non-empty text."""
        return self.same and self.n >= 2 and self.preview != ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)


def _role_texts(messages: Any, role: str) -> list[str]:
    if type(messages) is not list:
        return []
    return [_text(m.get("content")) for m in messages if type(m) is dict and m.get("role") == role]


class Accumulator:
    """Per-example numbers kept as compact arrays (24 bytes per example)."""

    def __init__(self, counter: TokenCounter, limit: int) -> None:
        self.counter = counter
        self.limit = limit
        self.n_messages = array("l")
        self.tokens = array("q")
        self.assistant = array("q")
        self.billed_per_epoch = 0
        self.n_over = 0
        self.n_missing_system = 0
        self.n_missing_user = 0
        self.user_text = SameText()
        self.answer_text = SameText()
        # True while either text may still be the same in every example; then each example is looked at.
        self.watching = True

    def note_texts(self, obj: Mapping[str, Any]) -> None:
        """Feed one example's user text and assistant answer (DPO: the preferred output) to the
        same-in-every-example checks; stops looking once both have varied (usually at the second example)."""
        messages = obj.get("messages")
        if messages is None:  # DPO
            inp = obj.get("input")
            prompt = inp.get("messages") if type(inp) is dict else None
            answer = _role_texts(obj.get("preferred_output"), "assistant")
        else:
            prompt = messages
            answer = _role_texts(messages, "assistant")
        if self.user_text.same:
            self.user_text.see(_role_texts(prompt, "user"))
        if self.answer_text.same:
            self.answer_text.see(answer)
        self.watching = self.user_text.same or self.answer_text.same

    def add(
        self,
        obj: Mapping[str, Any],
        line: int,
        collector: IssueCollector,
        counts: tuple[int, int, int] | None = None,
    ) -> None:
        """Record one example; ``counts`` (total, assistant, messages) when already counted elsewhere."""
        total, assistant, n_messages = counts or self.counter.example_tokens(obj)
        messages = obj.get("messages")
        if messages is None:  # DPO: the prompt is under "input"
            inp = obj.get("input")
            messages = inp.get("messages") if type(inp) is dict else None
        roles = [m.get("role") for m in messages if type(m) is dict] if type(messages) is list else []
        if self.watching:
            self.note_texts(obj)
        self.record(total, assistant, n_messages, "system" in roles, "user" in roles, line, collector)

    def record(
        self,
        total: int,
        assistant: int,
        n_messages: int,
        has_system: bool,
        has_user: bool,
        line: int,
        collector: IssueCollector,
    ) -> None:
        self.n_messages.append(n_messages)
        self.tokens.append(total)
        self.assistant.append(assistant)
        self.billed_per_epoch += total if total < self.limit else self.limit
        if not has_system:
            self.n_missing_system += 1
        if not has_user:
            self.n_missing_user += 1
        if total > self.limit:
            self.n_over += 1
            collector.add(
                line,
                "example_too_long",
                "warning",
                f"{total:,} tokens is over the {self.limit:,}-token limit; it will be truncated in training",
            )

    def plain_chat(
        self, obj: dict[str, Any], counts: tuple[int, int, int] | None = None
    ) -> tuple[int, int, int, bool, bool] | None:
        """Counts for the overwhelmingly common example — only ``messages``, each exactly a known role and
        non-empty string content, with an assistant turn — which has no possible issue; else None.

        This fuses the checks and the seed's token formula into one loop; anything else takes the general
        path (``check_chat`` + ``TokenCounter.example_tokens``), which gives the same numbers. ``counts``
        (from the token-counting worker, see parallel_tokens.py) skips the encoding, not the checks.
        """
        if counts is not None:
            return self._plain_checked(obj, counts)
        if len(obj) != 1:
            return None
        messages = obj.get("messages")
        if type(messages) is not list or not messages:
            return None
        cache_get = self.counter.cache.get
        count = self.counter.count
        total = TOKENS_PER_EXAMPLE
        assistant = 0
        has_system = has_user = has_assistant = False
        for m in messages:
            if type(m) is not dict or len(m) != 2:
                return None
            role = m.get("role")
            content = m.get("content")
            if type(role) is not str or type(content) is not str or not content or role not in PLAIN_ROLES:
                return None
            r = cache_get(role)
            if r is None:
                r = count(role)
            c = cache_get(content)
            if c is None:
                c = count(content)
            total += TOKENS_PER_MESSAGE + r + c
            if role == "assistant":
                assistant += c
                has_assistant = True
            elif role == "user":
                has_user = True
            elif role == "system":
                has_system = True
        if not has_assistant:
            return None
        return total, assistant, len(messages), has_system, has_user

    def _plain_checked(
        self, obj: dict[str, Any], counts: tuple[int, int, int]
    ) -> tuple[int, int, int, bool, bool] | None:
        """``plain_chat``'s checks alone, with the token counts given."""
        if len(obj) != 1:
            return None
        messages = obj.get("messages")
        if type(messages) is not list or not messages:
            return None
        has_system = has_user = has_assistant = False
        for m in messages:
            if type(m) is not dict or len(m) != 2:
                return None
            role = m.get("role")
            content = m.get("content")
            if type(role) is not str or type(content) is not str or not content or role not in PLAIN_ROLES:
                return None
            if role == "assistant":
                has_assistant = True
            elif role == "user":
                has_user = True
            elif role == "system":
                has_system = True
        if not has_assistant:
            return None
        return counts[0], counts[1], counts[2], has_system, has_user
