"""Validate a chat (or DPO) training file the way OpenAI will, before uploading it.

``validate_file`` streams the file line by line: it keeps only three small integers per example (messages,
tokens, assistant tokens) plus a capped list of issues, so its memory does not grow with the size of the
examples and an 8 GB file can be checked on an ordinary machine. It never raises on bad data and never stops
at the first bad line; every problem becomes a ``ValidationIssue`` with a stable ``code``.

Issue codes (severity): the seed notebook's checks ``data_type``, ``missing_messages_list``,
``message_missing_key``, ``message_unrecognized_key``, ``unrecognized_role``, ``missing_content``,
``example_missing_assistant_message`` (errors); plus ``invalid_json``, ``invalid_utf8``, ``blank_line``
(warning), ``invalid_content_part``, ``image_in_assistant_message``, ``invalid_tool_call``,
``invalid_tool_call_arguments``, ``tool_call_id_mismatch``, ``invalid_weight``, ``weight_on_non_assistant``,
``invalid_tools``, ``invalid_preference_output``, ``dpo_missing_input``, ``mixed_formats``, ``wrong_format``,
``too_few_examples``, ``empty_file``, ``file_unreadable``, ``over_budget`` (errors);
``unrecognized_example_key``, ``no_trained_assistant_message``, ``example_too_long``, ``unknown_model``,
``unknown_price`` (warnings); ``internal_error`` (error; a bug in the validator, please report it).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from finetune_wb import costs
from finetune_wb.report import Distribution, Severity, TokenStats, ValidationIssue, ValidationReport
from finetune_wb.tokens import TokenCounter, encoding_name_for_model, is_known_model

__all__ = ["ValidationIssue", "ValidationReport", "validate_examples", "validate_file"]

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
MIN_EXAMPLES = 10
MAX_LISTED_ISSUES = 1000

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"})
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})
CHAT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
DPO_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
DPO_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})

Format = Literal["chat", "dpo"]
Add = Callable[[str, Severity, str], None]


class _Collector:
    """Collects issues, listing at most ``limit`` of them but counting all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.issues: list[ValidationIssue] = []
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
            self.issues.append(ValidationIssue(line=line, code=code, severity=severity, message=message))
        else:
            self.omitted += 1

    def at(self, line: int | None) -> Add:
        return lambda code, severity, message: self.add(line, code, severity, message)


# ------------------------------------------------------------------------------------------------ checks


def _format_of(obj: Mapping[str, Any]) -> Format | None:
    if any(k in obj for k in DPO_KEYS):
        return "dpo"
    if "messages" in obj:
        return "chat"
    return None


def _is_json_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return False
    return True


def _check_content(where: str, role: Any, msg: Mapping[str, Any], add: Add) -> None:
    content = msg["content"]
    has_call = bool(msg.get("tool_calls")) or bool(msg.get("function_call"))
    if isinstance(content, str):
        if not content and not has_call:
            add("missing_content", "error", f"{where} has empty content; give it text")
        return
    if content is None:
        if not (role == "assistant" and has_call):
            add(
                "missing_content", "error", f"{where} has null content; only assistant tool calls may omit it"
            )
        return
    if not isinstance(content, list):
        add(
            "missing_content",
            "error",
            f"{where} content is {type(content).__name__}; use a string or a list of content parts",
        )
        return
    if not content:
        add("missing_content", "error", f"{where} has an empty content list; give it at least one part")
        return
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):  # type: ignore[union-attr]
            continue
        if kind == "image_url":
            image = part.get("image_url")  # type: ignore[union-attr]
            if not (isinstance(image, dict) and isinstance(image.get("url"), str)):
                add("invalid_content_part", "error", f"{where} part {j}: image_url needs {{'url': '...'}}")
            elif role == "assistant":
                add(
                    "image_in_assistant_message",
                    "error",
                    f"{where} part {j}: assistant messages cannot contain images; move it to a user message",
                )
            continue
        add(
            "invalid_content_part",
            "error",
            f"{where} part {j}: expected {{'type': 'text', 'text': ...}} or {{'type': 'image_url', ...}}",
        )


def _check_tool_calls(where: str, role: Any, calls: Any, ids: set[str], add: Add) -> None:
    if role != "assistant":
        add("invalid_tool_call", "error", f"{where}: only assistant messages may have tool_calls")
    if not isinstance(calls, list):
        add("invalid_tool_call", "error", f"{where}: tool_calls must be a list")
        return
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(fn, dict):
            add(
                "invalid_tool_call",
                "error",
                f"{where} tool_calls[{j}] needs 'id', 'type': 'function' and 'function': {{name, arguments}}",
            )
            continue
        ids.add(call["id"])
        if call.get("type", "function") != "function" or not isinstance(fn.get("name"), str):
            add("invalid_tool_call", "error", f"{where} tool_calls[{j}] needs type 'function' and a name")
        if not _is_json_text(fn.get("arguments")):
            add(
                "invalid_tool_call_arguments",
                "error",
                f"{where} tool_calls[{j}].function.arguments must be a string holding valid JSON",
            )


def _check_messages(messages: list[Any], add: Add, *, label: str = "message") -> tuple[bool, bool]:
    """Check a message list; return (has an assistant message, has one that is trained on)."""
    ids: set[str] = set()
    has_assistant = False
    trained = False
    for i, msg in enumerate(messages):
        if type(msg) is dict and len(msg) == 2 and type(msg.get("content")) is str and msg["content"]:
            # fast path for the common {"role": ..., "content": "..."} message
            role = msg.get("role")
            if type(role) is str and role in _PLAIN_ROLES:
                if role == "assistant":
                    has_assistant = trained = True
                continue
        where = f"{label} {i}"
        if not isinstance(msg, dict):
            add("data_type", "error", f"{where} is {type(msg).__name__}, not an object with role and content")
            continue
        role = msg.get("role")
        if not isinstance(role, str):
            role = None
        has_call = bool(msg.get("tool_calls")) or bool(msg.get("function_call"))
        missing = [k for k in ("role", "content") if k not in msg]
        if "content" in missing and role == "assistant" and has_call:
            missing.remove("content")
        if missing:
            add("message_missing_key", "error", f"{where} lacks {', '.join(repr(k) for k in missing)}")
        extra = [str(k) for k in msg if k not in MESSAGE_KEYS]
        if extra:
            add(
                "message_unrecognized_key",
                "error",
                f"{where} has unrecognized key(s) {', '.join(map(repr, extra))}; allowed: {sorted(MESSAGE_KEYS)}",
            )
        if "role" in msg and role not in ROLES:
            add("unrecognized_role", "error", f"{where} has role {msg['role']!r}; use one of {list(ROLES)}")
        if "content" in msg:
            _check_content(where, role, msg, add)
        if "weight" in msg:
            weight = msg["weight"]
            if role != "assistant":
                add(
                    "weight_on_non_assistant",
                    "error",
                    f"{where}: weight is only allowed on assistant messages",
                )
            elif type(weight) is not int or weight not in (0, 1):
                add("invalid_weight", "error", f"{where}: weight must be 0 or 1, got {weight!r}")
        if "tool_calls" in msg:
            _check_tool_calls(where, role, msg["tool_calls"], ids, add)
        fc = msg.get("function_call")
        if fc is not None:
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                add("invalid_tool_call", "error", f"{where}: function_call needs a name and arguments")
            elif not _is_json_text(fc.get("arguments")):
                add(
                    "invalid_tool_call_arguments",
                    "error",
                    f"{where}: function_call.arguments must be a string holding valid JSON",
                )
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in ids:
                add(
                    "tool_call_id_mismatch",
                    "error",
                    f"{where}: tool message has tool_call_id {call_id!r}, which matches no earlier assistant"
                    " tool call id",
                )
        if role == "assistant":
            has_assistant = True
            if msg.get("weight", 1) != 0:
                trained = True
    return has_assistant, trained


def _check_tools(container: Mapping[str, Any], add: Add) -> None:
    for key in ("tools", "functions"):
        value = container.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(t, dict) for t in value)):
            add("invalid_tools", "error", f"'{key}' must be a list of objects")
    ptc = container.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        add("invalid_tools", "error", "'parallel_tool_calls' must be true or false")


def _check_chat(obj: Mapping[str, Any], add: Add) -> None:
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        add("missing_messages_list", "error", "the example needs a non-empty 'messages' list")
        return
    if len(obj) > 1:  # only "messages" is the common case
        extra = [str(k) for k in obj if k not in CHAT_KEYS]
        if extra:
            add("unrecognized_example_key", "warning", f"unrecognized key(s) {', '.join(map(repr, extra))}")
        _check_tools(obj, add)
    has_assistant, trained = _check_messages(messages, add)
    if not has_assistant:
        add(
            "example_missing_assistant_message",
            "error",
            "the example has no assistant message; add the answer the model should learn",
        )
    elif not trained:
        add(
            "no_trained_assistant_message",
            "warning",
            "every assistant message has weight 0; nothing to learn",
        )


def _check_dpo(obj: Mapping[str, Any], add: Add) -> None:
    inp = obj.get("input")
    extra = [str(k) for k in obj if k not in DPO_KEYS]
    if extra:
        add("unrecognized_example_key", "warning", f"unrecognized key(s) {', '.join(map(repr, extra))}")
    if not isinstance(inp, dict):
        add("dpo_missing_input", "error", "a DPO example needs 'input': {'messages': [...]}")
    else:
        messages = inp.get("messages")
        if not isinstance(messages, list) or not messages:
            add("missing_messages_list", "error", "'input' needs a non-empty 'messages' list")
        else:
            _check_messages(messages, add, label="input message")
        _check_tools(inp, add)
    for key in ("preferred_output", "non_preferred_output"):
        value = obj.get(key)
        ok = isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
        if not ok or value[0].get("role") != "assistant":  # type: ignore[index]
            add(
                "invalid_preference_output",
                "error",
                f"'{key}' must be a list holding exactly one assistant message",
            )
        if ok:
            _check_messages(value, add, label=key)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ reading


def _iter_file(path: Path, collector: _Collector, stats: dict[str, int]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for every non-blank line; parse problems go to the collector."""
    line_no = 0
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark: harmless, accepted
            if raw[:1] != b"{" and not raw.strip():  # (the first-byte test spares a copy per line)
                collector.add(line_no, "blank_line", "warning", "blank line (skipped); remove it")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                collector.add(
                    line_no,
                    "invalid_utf8",
                    "error",
                    f"bytes at column {exc.start + 1} are not valid UTF-8; save the file as UTF-8",
                )
                yield line_no, _UNPARSED
                continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:
                detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
                collector.add(
                    line_no, "invalid_json", "error", f"not valid JSON ({detail}); one object per line"
                )
                yield line_no, _UNPARSED
                continue
            yield line_no, value
    stats["lines"] = line_no


_UNPARSED = object()


class _Accumulator:
    """Per-example numbers kept as compact arrays (12 bytes per example)."""

    def __init__(self, counter: TokenCounter, limit: int) -> None:
        self.counter = counter
        self.limit = limit
        self.n_messages = array("l")
        self.tokens = array("q")
        self.assistant = array("q")
        self.billed_per_epoch = 0
        self.n_over = 0

    def add(self, obj: Mapping[str, Any], line: int, collector: _Collector) -> None:
        total, assistant, n_messages = self.counter.example_tokens(obj)
        self.n_messages.append(n_messages)
        self.tokens.append(total)
        self.assistant.append(assistant)
        self.billed_per_epoch += min(self.limit, total)
        if total > self.limit:
            self.n_over += 1
            collector.add(
                line,
                "example_too_long",
                "warning",
                f"{total:,} tokens is over the {self.limit:,}-token limit; it will be truncated in training",
            )


def _run(
    records: Iterable[tuple[int, Any]],
    *,
    path: str | None,
    model: str,
    method: str | None,
    n_epochs: int | str | None,
    max_cost: float | None,
    prices: Mapping[str, float] | None,
    collector: _Collector,
    file_stats: dict[str, int],
) -> ValidationReport:
    if method not in (None, "supervised", "dpo", "reinforcement"):
        from finetune_wb.errors import ConfigError

        raise ConfigError(f"method must be 'supervised', 'dpo' or 'reinforcement', got {method!r}")
    forced: Format | None = None if method is None else ("dpo" if method == "dpo" else "chat")
    file_format: Format | None = forced
    decided_at: int | None = None
    limit = costs.context_limit(model)
    if limit is None or not is_known_model(model):
        collector.add(
            None,
            "unknown_model",
            "warning",
            f"model {model!r} is not in the built-in tables; assuming the {encoding_name_for_model(model)}"
            f" encoding and a {costs.DEFAULT_CONTEXT_LIMIT:,}-token limit",
        )
    limit = limit or costs.DEFAULT_CONTEXT_LIMIT
    counter = TokenCounter.for_model(model)
    acc = _Accumulator(counter, limit)
    n_examples = 0
    for line, obj in records:
        n_examples += 1
        if obj is _UNPARSED:
            continue
        add = collector.at(line)
        try:
            if not isinstance(obj, dict):
                add("data_type", "error", f"the line is a JSON {type(obj).__name__}, not an object")
                continue
            fmt = _format_of(obj)
            if fmt is not None and file_format is None:
                file_format, decided_at = fmt, line
            if fmt is not None and fmt != file_format:
                if forced is not None:
                    add(
                        "wrong_format",
                        "error",
                        f"this is a {fmt} example but method={method!r} expects {file_format} examples",
                    )
                else:
                    add(
                        "mixed_formats",
                        "error",
                        f"this is a {fmt} example but the file is {file_format} (from line {decided_at});"
                        " keep one format per file",
                    )
                continue
            if (file_format or "chat") == "dpo":
                _check_dpo(obj, add)
            else:
                _check_chat(obj, add)
            acc.add(obj, line, collector)
        except Exception as exc:  # never raise on data; a crash here is our bug, reported as an issue
            add("internal_error", "error", f"the validator failed on this line ({type(exc).__name__}: {exc})")
    return _finish(
        acc,
        n_examples=n_examples,
        path=path,
        model=model,
        fmt=file_format or "chat",
        n_epochs=n_epochs,
        max_cost=max_cost,
        prices=prices,
        collector=collector,
        n_lines=file_stats.get("lines", n_examples),
    )


def _finish(
    acc: _Accumulator,
    *,
    n_examples: int,
    path: str | None,
    model: str,
    fmt: Format,
    n_epochs: int | str | None,
    max_cost: float | None,
    prices: Mapping[str, float] | None,
    collector: _Collector,
    n_lines: int,
) -> ValidationReport:
    if n_examples == 0:
        collector.add(None, "empty_file", "error", "there are no examples; add at least 10")
    elif n_examples < MIN_EXAMPLES:
        collector.add(
            None,
            "too_few_examples",
            "error",
            f"{n_examples} examples; OpenAI requires at least {MIN_EXAMPLES} (50-100 usually work better)",
        )
    acc.counter.clear()
    epochs = n_epochs if isinstance(n_epochs, int) else costs.default_epochs(n_examples)
    billed = acc.billed_per_epoch * epochs
    rate = costs.price_per_million(model, prices=prices)
    cost = None if rate is None else billed * rate / 1_000_000
    if max_cost is not None:
        if cost is None:
            collector.add(
                None,
                "unknown_price",
                "warning",
                f"no training price known for {model!r}, so max_cost cannot be checked; pass prices=",
            )
        elif cost > max_cost:
            collector.add(
                None,
                "over_budget",
                "error",
                f"estimated cost ${cost:,.2f} ({billed:,} tokens) is over max_cost ${max_cost:,.2f};"
                " use fewer or shorter examples or fewer epochs",
            )
    tokens = TokenStats(
        total=int(sum(acc.tokens)),
        billed=billed,
        billed_per_epoch=acc.billed_per_epoch,
        n_over_limit=acc.n_over,
        context_limit=acc.limit,
        encoding=acc.counter.encoding.name,
        messages_per_example=Distribution.of(acc.n_messages),
        per_example=Distribution.of(acc.tokens),
        assistant_per_example=Distribution.of(acc.assistant),
    )
    return ValidationReport(
        path=path,
        model=model,
        format=fmt,
        n_examples=n_examples,
        n_lines=n_lines,
        issues=collector.issues,
        issue_counts=dict(collector.counts),
        n_issues_omitted=collector.omitted,
        n_errors=collector.n_errors,
        n_warnings=collector.n_warnings,
        tokens=tokens,
        n_epochs=epochs,
        estimated_cost_usd=cost,
        price_per_million_tokens=rate,
    )


def validate_file(
    path: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    method: str | None = None,
    n_epochs: int | str | None = None,
    max_cost: float | None = None,
    prices: Mapping[str, float] | None = None,
    max_issues: int = MAX_LISTED_ISSUES,
) -> ValidationReport:
    """Validate a JSONL training file; never raises on bad data (see the module docstring for codes).

    ``method`` forces the format ("supervised"/"reinforcement" = chat, "dpo" = preference); by default it
    is detected from the first recognizable line. ``n_epochs`` overrides the default-epochs rule;
    ``max_cost`` (USD) turns an estimate over budget into an error; ``prices`` overrides the price table
    (USD per 1M training tokens, keyed by model-name prefix).
    """
    p = Path(path)
    collector = _Collector(max_issues)
    file_stats: dict[str, int] = {}
    kwargs: dict[str, Any] = dict(
        path=str(path), model=model, method=method, n_epochs=n_epochs, max_cost=max_cost, prices=prices
    )
    try:
        return _run(
            _iter_file(p, collector, file_stats), collector=collector, file_stats=file_stats, **kwargs
        )
    except OSError as exc:
        what = (
            "does not exist"
            if isinstance(exc, FileNotFoundError)
            else f"cannot be read ({exc.strerror or exc})"
        )
        fresh = _Collector(max_issues)
        fresh.add(None, "file_unreadable", "error", f"{path} {what}; check the path and permissions")
        report = ValidationReport(
            path=str(path),
            model=model,
            issues=fresh.issues,
            issue_counts=fresh.counts,
            n_errors=1,
            unreadable=True,
        )
        return report


def validate_examples(
    examples: Iterable[Any],
    *,
    model: str = DEFAULT_MODEL,
    method: str | None = None,
    n_epochs: int | str | None = None,
    max_cost: float | None = None,
    prices: Mapping[str, float] | None = None,
    max_issues: int = MAX_LISTED_ISSUES,
) -> ValidationReport:
    """Validate in-memory examples (ChatExample / PreferenceExample / dicts); ``line`` = 1-based position.

    A ``str`` or path is validated as a file.
    """
    if isinstance(examples, (str, os.PathLike)):
        return validate_file(
            examples,
            model=model,
            method=method,
            n_epochs=n_epochs,
            max_cost=max_cost,
            prices=prices,
            max_issues=max_issues,
        )

    def records() -> Iterator[tuple[int, Any]]:
        for i, ex in enumerate(examples, start=1):
            yield i, (ex.to_openai() if hasattr(ex, "to_openai") else ex)

    collector = _Collector(max_issues)
    return _run(
        records(),
        path=None,
        model=model,
        method=method,
        n_epochs=n_epochs,
        max_cost=max_cost,
        prices=prices,
        collector=collector,
        file_stats={},
    )
