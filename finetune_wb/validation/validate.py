"""Validate a chat (or DPO) training file the way OpenAI will, before uploading it.

``validate_file`` streams the file line by line: it keeps only three small integers per example (messages,
tokens, assistant tokens) plus a capped list of issues, so its memory does not grow with the size of the
examples and an 8 GB file can be checked on an ordinary machine. It never raises on bad data and never stops
at the first bad line; every problem becomes a ``ValidationIssue`` with a stable ``code``.

Issue codes (severity): the seed notebook's checks ``data_type``, ``missing_messages_list``,
``message_missing_key``, ``message_unrecognized_key``, ``unrecognized_role``, ``missing_content``,
``example_missing_assistant_message`` (errors); plus ``invalid_json``, ``invalid_utf8``, ``blank_line``
(warning), ``nul_byte`` (a raw NUL byte in a line), ``invalid_unicode`` (a lone surrogate escape such
as ``"\\ud800"``), ``invalid_content_part``, ``image_in_assistant_message``, ``invalid_tool_call``,
``invalid_tool_call_arguments``, ``tool_call_id_mismatch``, ``invalid_weight``, ``weight_on_non_assistant``,
``invalid_tools``, ``invalid_preference_output``, ``dpo_missing_input``, ``mixed_formats``, ``wrong_format``,
``too_few_examples``, ``empty_file``, ``file_unreadable``, ``over_budget`` (errors);
``unrecognized_example_key``, ``no_trained_assistant_message``, ``example_too_long``, ``unknown_model``,
``unknown_price``, ``constant_answer``, ``constant_user_text`` (warnings); ``internal_error`` (error; a bug
in the validator, please report it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.validation import costs, parallel_tokens
from finetune_wb.validation.accumulate import Accumulator, IssueCollector
from finetune_wb.validation.format_checks import Format, check_chat, check_dpo, format_of
from finetune_wb.validation.reader import UNPARSED, NotText, iter_lines
from finetune_wb.validation.tokens import (
    TokenCounter,
    encoding_name_for_model,
    is_known_model,
)

if TYPE_CHECKING:
    from finetune_wb.validation.report import ValidationReport


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


def _unknown_model_message(model: str, limit: int | None) -> str:
    """Says the id is not a known one, names the closest known ids, and what the figures assume."""
    close = [repr(c) for c in costs.closest_models(model)]
    names = " or ".join(close) if len(close) < 3 else f"{', '.join(close[:-1])} or {close[-1]}"
    guess = f" (did you mean {names}?)" if close else ""
    encoding = encoding_name_for_model(model)
    if limit is not None and is_known_model(model):
        return (
            f"model {model!r} is not a known model id{guess}; the figures assume the {encoding} encoding and"
            f" {limit:,}-token limit of the models its name starts like. Check the id before training:"
            " OpenAI rejects an unknown model when the job is created"
        )
    return (
        f"model {model!r} is not in the built-in tables{guess}; assuming the {encoding} encoding and a"
        f" {costs.DEFAULT_CONTEXT_LIMIT:,}-token limit"
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
    collector: IssueCollector,
    file_stats: dict[str, int],
    counter: TokenCounter,
    precount: Callable[[int], tuple[int, int, int] | None] | None = None,
) -> ValidationReport:
    forced: Format | None = None if method is None else ("dpo" if method == "dpo" else "chat")
    file_format: Format | None = forced
    decided_at: int | None = None
    limit = costs.context_limit(model)
    if not costs.is_known_model_id(model):
        collector.add(None, "unknown_model", "warning", _unknown_model_message(model, limit))
    limit = limit or costs.DEFAULT_CONTEXT_LIMIT
    acc = Accumulator(counter, limit)
    n_examples = 0
    # The fused fast path applies while the file is (or may still become) a chat file.
    fast_ok = file_format in (None, "chat")
    for line, obj in records:
        n_examples += 1
        if obj is UNPARSED:
            continue
        counts = precount(line) if precount is not None else None  # from the token worker, if any
        if fast_ok and type(obj) is dict:
            plain = acc.plain_chat(obj, counts)
            if plain is not None:
                if file_format is None:
                    file_format, decided_at = "chat", line
                acc.record(*plain, line, collector)
                if acc.watching:
                    acc.note_texts(obj)
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
            acc.add(obj, line, collector, counts)
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
    acc: Accumulator,
    *,
    n_examples: int,
    path: str | None,
    model: str,
    fmt: Format,
    n_epochs: int | str | None,
    max_cost: float | None,
    prices: Mapping[str, float] | None,
    collector: IssueCollector,
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
    for same, code, what, effect in (
        (acc.answer_text, "constant_answer", "assistant answer", "would learn to give it to every input"),
        (acc.user_text, "constant_user_text", "user text", "cannot learn which answer goes with which input"),
    ):
        if same.constant():
            collector.add(
                None,
                code,
                "warning",
                f"all {same.n:,} examples have the same {what} ({same.preview!r}), so the model {effect};"
                " if the file was built with a Template, check that the part names a record field (a misspelt"
                " name or fixed text gives every example the same text)",
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


def _shared_with(quality_pass: Any, records: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The validator's records, each parsed example also handed to the quality pass (one read, one parse)."""
    add = quality_pass.add
    for line, obj in records:
        if obj is not UNPARSED:
            add(line, obj)
        yield line, obj


def validate_file(
    path: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    method: str | None = None,
    n_epochs: int | str | None = None,
    max_cost: float | None = None,
    prices: Mapping[str, float] | None = None,
    max_issues: int = MAX_LISTED_ISSUES,
    quality: bool | Mapping[str, Any] = False,
    test: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Validate a JSONL training file; never raises on bad data (see the module docstring for codes).

    ``quality``: also run the data-quality checks (:func:`~finetune_wb.validation.quality.check_quality`;
    a mapping passes its options) against ``test`` when given; the findings are ``report.quality`` and an
    error finding makes ``report.ok`` False.

    Raises ConfigError only for set-up problems: an unknown ``method``, ``n_epochs`` outside 1-50,
    a negative ``max_cost`` or ``max_issues``, or a tokenizer that cannot load.

    ``method`` forces the format ("supervised"/"reinforcement" = chat, "dpo" = preference); by default it
    is detected from the first recognizable line. ``n_epochs`` overrides the default-epochs rule;
    ``max_cost`` (USD) turns an estimate over budget into an error; ``prices`` overrides the price table
    (USD per 1M training tokens, keyed by model-name prefix).
    """
    _check_options(method, n_epochs, max_cost, max_issues)
    p = Path(path)
    collector = IssueCollector(max_issues)
    file_stats: dict[str, int] = {}
    # Loaded before the file is touched: a tokenizer that cannot load is a set-up problem (ConfigError),
    # not an unreadable file.
    counter = TokenCounter.for_model(model)
    kwargs: dict[str, Any] = dict(
        path=str(path), model=model, method=method, n_epochs=n_epochs, max_cost=max_cost, prices=prices
    )
    quality_pass = None
    if quality is True or isinstance(quality, Mapping):
        from finetune_wb.validation.quality.check import QualityPass

        # Options checked (and the test file's presence) before the file is read.
        quality_pass = QualityPass(test, **(dict(quality) if isinstance(quality, Mapping) else {}))
    precount = parallel_tokens.start(p, counter)  # a second process counting tokens, for large files
    try:
        records: Iterable[tuple[int, Any]] = iter_lines(p, collector, file_stats)
        if quality_pass is not None:
            records = _shared_with(quality_pass, records)
        report = _run(
            records,
            collector=collector,
            file_stats=file_stats,
            counter=counter,
            precount=precount,
            **kwargs,
        )
        if quality_pass is not None and not report.unreadable:
            report.quality = quality_pass.report(p)
            if report.quality.counts.get("secret") or report.quality.counts.get("personal_data"):
                from finetune_wb.validation.quality.sensitive import mask_text

                # a quoted text (constant_answer's preview) must not re-leak what the quality pass found
                report.issues = [
                    i.model_copy(update={"message": mask_text(i.message)}) for i in report.issues
                ]
        return report
    except NotText as exc:
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
    finally:
        if precount is not None:
            precount.close()


def _unreadable_report(
    path: str | os.PathLike[str], model: str, max_issues: int, message: str
) -> ValidationReport:
    from finetune_wb.validation.report import ValidationReport

    fresh = IssueCollector(max_issues)
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

    collector = IssueCollector(max_issues)
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
