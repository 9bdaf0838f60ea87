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

import io
import json
import json.scanner
import math
import os
from array import array
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from finetune_wb.validation import costs
from finetune_wb.validation.format_checks import PLAIN_ROLES, Add, Format, check_chat, check_dpo, format_of
from finetune_wb.validation.tokens import (
    TOKENS_PER_EXAMPLE,
    TOKENS_PER_MESSAGE,
    TokenCounter,
    encoding_name_for_model,
    is_known_model,
)

if TYPE_CHECKING:
    from finetune_wb.validation.report import Severity, ValidationIssue, ValidationReport

__all__ = ["ValidationIssue", "ValidationReport", "validate_examples", "validate_file"]


def __getattr__(name: str) -> Any:
    # The report models (pydantic) are imported when a report is built, after the tokenizer has loaded, so
    # the two biggest fixed costs of a validation never stack at the peak (see docs/data.md).
    if name in ("ValidationIssue", "ValidationReport"):
        from finetune_wb.validation import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
MIN_EXAMPLES = 10
MAX_LISTED_ISSUES = 1000


class _Collector:
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


# ------------------------------------------------------------------------------------------------ reading


def _iter_file(path: Path, collector: _Collector, stats: dict[str, int]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for every non-blank line; parse problems go to the collector."""
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
    line_no = 0
    with open(path, "rb", buffering=_SNIFF_BYTES) as f:
        # Sniffed from the same handle (peek consumes nothing), so a pipe or /dev/stdin is read only once.
        reason = _not_utf8_text(cast(io.BufferedReader, f).peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
        if reason is not None:
            raise _NotText(reason)
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
                # The decoder's scanner directly (what json.loads runs after two whitespace regexes);
                # anything unusual falls back to json.loads for its exact error message.
                value, end = scan(text, 0)
                if end != len(text) and text[end:].strip(" \t\r\n"):
                    raise ValueError("extra data")
            except (StopIteration, ValueError, RecursionError):
                value = _UNPARSED
            if value is _UNPARSED:
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
_SNIFF_BYTES = 65_536


class _NotText(Exception):
    """The file is not UTF-8 text at all (raised before the first line is parsed)."""


def _not_utf8_text(head: bytes) -> str | None:
    """Why the file is not UTF-8 text at all (a UTF-16/32 file, a binary or compressed file), else None.

    JSON text can never hold a raw NUL byte (strings must escape it), so a NUL in the first 64 KiB means the
    file is not JSONL in UTF-8; listing thousands of per-line errors for it would hide the one real problem.
    """
    for bom, name in (
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\xfe\xff", "UTF-16"),
        (b"\xff\xfe", "UTF-16"),
    ):
        if head.startswith(bom):
            return f"it starts with a {name} byte-order mark"
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        return f"it has a NUL byte at line {line}, byte {nul + 1} (is it binary, compressed or UTF-16?)"
    return None


class _Accumulator:
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

    def add(self, obj: Mapping[str, Any], line: int, collector: _Collector) -> None:
        total, assistant, n_messages = self.counter.example_tokens(obj)
        messages = obj.get("messages")
        if messages is None:  # DPO: the prompt is under "input"
            inp = obj.get("input")
            messages = inp.get("messages") if type(inp) is dict else None
        roles = [m.get("role") for m in messages if type(m) is dict] if type(messages) is list else []
        self.record(total, assistant, n_messages, "system" in roles, "user" in roles, line, collector)

    def record(
        self,
        total: int,
        assistant: int,
        n_messages: int,
        has_system: bool,
        has_user: bool,
        line: int,
        collector: _Collector,
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

    def plain_chat(self, obj: dict[str, Any]) -> tuple[int, int, int, bool, bool] | None:
        """Counts for the overwhelmingly common example — only ``messages``, each exactly a known role and
        non-empty string content, with an assistant turn — which has no possible issue; else None.

        This fuses the checks and the seed's token formula into one loop; anything else takes the general
        path (``check_chat`` + ``TokenCounter.example_tokens``), which gives the same numbers.
        """
        if len(obj) != 1:
            return None
        messages = obj.get("messages")
        if type(messages) is not list or not messages:
            return None
        cache_get = self.counter._cache.get
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


def _check_options(
    method: str | None, n_epochs: int | str | None, max_cost: float | None, max_issues: int
) -> None:
    """Set-up mistakes are ConfigErrors, raised before any work (bad data never raises)."""
    from finetune_wb.errors import ConfigError

    if method not in (None, "supervised", "dpo", "reinforcement"):
        raise ConfigError(f"method must be 'supervised', 'dpo' or 'reinforcement', got {method!r}")
    if not (
        n_epochs is None
        or n_epochs == "auto"
        or (isinstance(n_epochs, int) and not isinstance(n_epochs, bool) and 1 <= n_epochs <= 50)
    ):
        raise ConfigError(f"n_epochs must be None, 'auto' or an integer from 1 to 50, got {n_epochs!r}")
    if max_cost is not None and (
        isinstance(max_cost, bool)
        or not isinstance(max_cost, (int, float))
        or not math.isfinite(max_cost)
        or max_cost < 0
    ):
        raise ConfigError(f"max_cost must be a number of US dollars >= 0, got {max_cost!r}")
    if isinstance(max_issues, bool) or not isinstance(max_issues, int) or max_issues < 0:
        raise ConfigError(f"max_issues must be an integer >= 0, got {max_issues!r}")


def _usd(amount: float) -> str:
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.4f}"


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
    counter: TokenCounter,
) -> ValidationReport:
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
    acc = _Accumulator(counter, limit)
    n_examples = 0
    # The fused fast path applies while the file is (or may still become) a chat file.
    fast_ok = file_format in (None, "chat")
    for line, obj in records:
        n_examples += 1
        if obj is _UNPARSED:
            continue
        if fast_ok and type(obj) is dict:
            plain = acc.plain_chat(obj)
            if plain is not None:
                if file_format is None:
                    file_format, decided_at = "chat", line
                acc.record(*plain, line, collector)
                continue
        add = collector.at(line)
        try:
            if not isinstance(obj, dict):
                add("data_type", "error", f"the line is a JSON {type(obj).__name__}, not an object")
                continue
            fmt = format_of(obj)
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
                check_dpo(obj, add)
            else:
                check_chat(obj, add, reinforcement=method == "reinforcement")
            acc.add(obj, line, collector)
            fast_ok = file_format in (None, "chat")
        except Exception as exc:  # never raise on data; a crash here is our bug, reported as an issue
            add("internal_error", "error", f"the validator failed on this line ({type(exc).__name__}: {exc})")
    # Not one line decoded as UTF-8: the file as a whole cannot be read as text.
    not_text = n_examples > 0 and collector.counts.get("invalid_utf8", 0) == n_examples
    if not_text:
        collector.add(
            None,
            "file_unreadable",
            "error",
            f"{path}: no line is valid UTF-8; save the file as UTF-8 JSONL (one JSON object per line)",
        )
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
        unreadable=not_text,
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
    unreadable: bool = False,
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
                f"estimated cost ${_usd(cost)} ({billed:,} tokens) is over max_cost ${_usd(max_cost)};"
                " use fewer or shorter examples or fewer epochs",
            )
    from finetune_wb.validation.report import Distribution, TokenStats, ValidationReport

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
        issues=collector.built(),
        issue_counts=dict(collector.counts),
        n_issues_omitted=collector.omitted,
        n_errors=collector.n_errors,
        n_warnings=collector.n_warnings,
        tokens=tokens,
        n_epochs=epochs,
        estimated_cost_usd=cost,
        price_per_million_tokens=rate,
        n_missing_system=acc.n_missing_system,
        n_missing_user=acc.n_missing_user,
        unreadable=unreadable,
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

    Raises ConfigError only for set-up problems: an unknown ``method``, ``n_epochs`` outside 1-50,
    a negative ``max_cost`` or ``max_issues``, or a tokenizer that cannot load.

    ``method`` forces the format ("supervised"/"reinforcement" = chat, "dpo" = preference); by default it
    is detected from the first recognizable line. ``n_epochs`` overrides the default-epochs rule;
    ``max_cost`` (USD) turns an estimate over budget into an error; ``prices`` overrides the price table
    (USD per 1M training tokens, keyed by model-name prefix).
    """
    _check_options(method, n_epochs, max_cost, max_issues)
    p = Path(path)
    collector = _Collector(max_issues)
    file_stats: dict[str, int] = {}
    # Loaded before the file is touched: a tokenizer that cannot load is a set-up problem (ConfigError),
    # not an unreadable file.
    counter = TokenCounter.for_model(model)
    kwargs: dict[str, Any] = dict(
        path=str(path), model=model, method=method, n_epochs=n_epochs, max_cost=max_cost, prices=prices
    )
    try:
        return _run(
            _iter_file(p, collector, file_stats),
            collector=collector,
            file_stats=file_stats,
            counter=counter,
            **kwargs,
        )
    except _NotText as exc:
        return _unreadable_report(
            path, model, max_issues, f"{path} is not a UTF-8 text file: {exc}; save it as UTF-8 JSONL"
        )
    except OSError as exc:
        what = (
            "does not exist"
            if isinstance(exc, FileNotFoundError)
            else f"cannot be read ({exc.strerror or exc})"
        )
        return _unreadable_report(path, model, max_issues, f"{path} {what}; check the path and permissions")


def _unreadable_report(
    path: str | os.PathLike[str], model: str, max_issues: int, message: str
) -> ValidationReport:
    from finetune_wb.validation.report import ValidationReport

    fresh = _Collector(max_issues)
    fresh.add(None, "file_unreadable", "error", message)
    return ValidationReport(
        path=str(path),
        model=model,
        issues=fresh.built(),
        issue_counts=fresh.counts,
        n_errors=1,
        unreadable=True,
    )


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

    _check_options(method, n_epochs, max_cost, max_issues)

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
        counter=TokenCounter.for_model(model),
    )
