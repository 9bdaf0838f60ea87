"""``tool_call_match``: did the model call the reference's function(s) with the reference's arguments?

A row scores 1 when the answer holds exactly the reference's calls (same names, arguments equal as parsed
JSON after the configured normalisation), else 0. Partial credit is in the metric's details:
``name_accuracy`` (rows whose called names are the reference's), ``argument_accuracy`` (reference calls
answered with the right arguments), a per-function table, and a confusion table of called names (reference
vs predicted, ``<no call>`` included). Arguments the model wrote that are not JSON count as wrong arguments,
with the reason in the row's note; never an exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation.builtin_evaluators import builtin
from finetune_wb.evaluation.evaluators import Score
from finetune_wb.evaluation.tool_calls import NO_CALL, calls_label, parse_arguments, reference_calls

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = ["ToolCallMatch", "tool_call_match"]

_NORMALISATIONS = ("case", "whitespace", "numbers")


def _normalise(value: Any, path: str, rules: Mapping[str, frozenset[str]], default: frozenset[str]) -> Any:
    """``value`` with the normalisations of ``path`` (its dotted key) applied, recursively."""
    if isinstance(value, dict):
        return {k: _normalise(v, f"{path}.{k}" if path else str(k), rules, default) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, path, rules, default) for v in value]
    how = rules.get(path, rules.get(path.rsplit(".", 1)[-1], default)) if path else default
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value) if "numbers" in how else value
    if isinstance(value, str):
        text = value
        if "whitespace" in how:
            text = " ".join(text.split())
        if "case" in how:
            text = text.casefold()
        if "numbers" in how:
            try:
                number = float(text.replace(",", "")) if text.strip() else None
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                return number
        return text
    return value


def _subset(want: Any, got: Any) -> bool:
    """Every key of ``want`` is in ``got`` with an equal value (recursively for objects)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    return bool(want == got)


def _diff(want: Any, got: Any) -> str:
    if isinstance(want, dict) and isinstance(got, dict):
        missing = [k for k in want if k not in got]
        wrong = [k for k in want if k in got and want[k] != got[k]]
        extra = [k for k in got if k not in want]
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if wrong:
            parts.append(
                "; ".join(f"{k!r} is {json.dumps(got[k])}, expected {json.dumps(want[k])}" for k in wrong)
            )
        if extra:
            parts.append(f"extra {extra}")
        return ", ".join(parts) or "differs"
    return f"{json.dumps(got)[:80]}, expected {json.dumps(want)[:80]}"


class ToolCallMatch:
    """The ``tool_call_match`` evaluator; build it with :func:`tool_call_match`."""

    def __init__(
        self,
        *,
        arguments: Literal["exact", "subset"],
        ignore_case: bool,
        normalize_whitespace: bool,
        normalize_numbers: bool,
        normalize: Mapping[str, Sequence[str]] | None,
        order_insensitive: bool,
        name: str,
    ) -> None:
        if arguments not in ("exact", "subset"):
            raise EvaluationError(f"tool_call_match: arguments={arguments!r}; use 'exact' or 'subset'")
        self.name = name
        self.arguments = arguments
        self.order_insensitive = order_insensitive
        default = {
            n
            for n, on in zip(
                _NORMALISATIONS, (ignore_case, normalize_whitespace, normalize_numbers), strict=True
            )
            if on
        }
        self._default = frozenset(default)
        if normalize is not None and not isinstance(normalize, Mapping):
            raise EvaluationError(
                'tool_call_match: normalize takes an object {key: ["case", "whitespace", "numbers"]}, '
                f'e.g. \'tool_call_match:{{"normalize": {{"city": ["case"]}}}}\'; got {normalize!r}'
            )
        self._rules: dict[str, frozenset[str]] = {}
        for key, how in (normalize or {}).items():
            items = [how] if isinstance(how, str) else list(how)
            unknown = sorted(set(items) - set(_NORMALISATIONS))
            if unknown:
                raise EvaluationError(
                    f"tool_call_match: normalize[{key!r}] has {unknown}; use any of {list(_NORMALISATIONS)}"
                )
            self._rules[key] = frozenset(items)
        self.params: dict[str, Any] = {
            "arguments": arguments,
            "ignore_case": ignore_case,
            "normalize_whitespace": normalize_whitespace,
            "normalize_numbers": normalize_numbers,
            "normalize": {k: sorted(v) for k, v in self._rules.items()} or None,
            "order_insensitive": order_insensitive,
        }

    def _args_match(self, want_text: str, got_text: str) -> tuple[bool, str]:
        ok_w, want, why_w = parse_arguments(want_text)
        if not ok_w:
            return False, f"reference {why_w}"
        ok_g, got, why_g = parse_arguments(got_text)
        if not ok_g:
            return False, why_g
        want_n = _normalise(want, "", self._rules, self._default)
        got_n = _normalise(got, "", self._rules, self._default)
        same = _subset(want_n, got_n) if self.arguments == "subset" else want_n == got_n
        return same, "" if same else _diff(want_n, got_n)

    def _pair(
        self, ref: list[dict[str, str]], pred: list[dict[str, str]]
    ) -> list[tuple[dict[str, str], dict[str, str] | None, bool, str]]:
        """Each reference call with the predicted call it is matched to, whether the arguments match, why not."""
        out: list[tuple[dict[str, str], dict[str, str] | None, bool, str]] = []
        if not self.order_insensitive:
            for i, want in enumerate(ref):
                got = pred[i] if i < len(pred) and pred[i]["name"] == want["name"] else None
                ok, why = self._args_match(want["arguments"], got["arguments"]) if got else (False, "")
                out.append((want, got, ok, why))
            return out
        # two passes: first each reference call takes a predicted call that matches it fully, then the
        # calls still unmatched pair by name (so the arguments of a near miss are reported)
        matched: dict[int, tuple[int, bool, str]] = {}
        free = list(range(len(pred)))
        for r, want in enumerate(ref):
            for j in free:
                if pred[j]["name"] == want["name"]:
                    ok, why = self._args_match(want["arguments"], pred[j]["arguments"])
                    if ok:
                        matched[r] = (j, True, "")
                        free.remove(j)
                        break
        for r, want in enumerate(ref):
            if r in matched:
                continue
            same_name = next((k for k in free if pred[k]["name"] == want["name"]), None)
            if same_name is not None:
                free.remove(same_name)
                ok, why = self._args_match(want["arguments"], pred[same_name]["arguments"])
                matched[r] = (same_name, ok, why)
        for r, want in enumerate(ref):
            if r in matched:
                j, ok, why = matched[r]
                out.append((want, pred[j], ok, why))
            else:
                out.append((want, None, False, ""))
        return out

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        """Without the answer's calls (called directly): an answer of text only."""
        return self.score_calls([], example)

    async def ascore_answer(self, answer: Any, example: ChatExample) -> Score:
        return self.score_calls(list(answer.tool_calls or []), example)

    def score_calls(self, pred: list[dict[str, str]], example: ChatExample) -> Score:
        ref = reference_calls(example)
        ref_label, pred_label = calls_label(ref), calls_label(pred)
        if not ref:
            ok = not pred
            note = None if ok else f"called {pred_label} where the reference answers with text"
            details = {"reference": NO_CALL, "calls": [], "names_ok": ok}
            return Score(value=float(ok), binary=True, label=pred_label, explanation=note, details=details)
        pairs = self._pair(ref, pred)
        ref_names, pred_names = [c["name"] for c in ref], [c["name"] for c in pred]
        names_ok = (
            sorted(ref_names) == sorted(pred_names) if self.order_insensitive else ref_names == pred_names
        )
        notes = []
        for want, got, ok, why in pairs:
            if got is None:
                notes.append(f"{want['name']}: not called")
            elif not ok:
                notes.append(f"{want['name']}: {why}")
        extra = len(pred) - sum(1 for _, got, _, _ in pairs if got is not None)
        if extra > 0:
            notes.append(f"{extra} call(s) beyond the reference's ({pred_label})")
        value = 1.0 if names_ok and len(pred) == len(ref) and all(p[2] for p in pairs) else 0.0
        details = {
            "reference": ref_label,
            "names_ok": names_ok,
            "calls": [
                {"name": w["name"], "called": g is not None, "arguments_ok": ok} for w, g, ok, _ in pairs
            ],
        }
        return Score(
            value=value, binary=True, label=pred_label, explanation="; ".join(notes) or None, details=details
        )

    def aggregate(self, scores: Sequence[Score], targets: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
        """Name and argument accuracy, the per-function table and the confusion table of called names."""
        rows = [s.details or {} for s in scores]
        with_calls = [r for r in rows if r.get("calls")]
        calls = [c for r in with_calls for c in r["calls"]]
        per_function: dict[str, dict[str, Any]] = {}
        for c in calls:
            entry = per_function.setdefault(c["name"], {"n": 0, "called": 0, "arguments_ok": 0})
            entry["n"] += 1
            entry["called"] += int(c["called"])
            entry["arguments_ok"] += int(c["arguments_ok"])
        for entry in per_function.values():
            entry["name_accuracy"] = entry["called"] / entry["n"]
            entry["argument_accuracy"] = entry["arguments_ok"] / entry["n"]
        gold = [str(r.get("reference", NO_CALL)) for r in rows]
        predicted = [s.label or NO_CALL for s in scores]
        labels = sorted(set(gold) | set(predicted), key=lambda x: (x == NO_CALL, x))
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for g, p in zip(gold, predicted, strict=True):
            matrix[index[g]][index[p]] += 1
        return {
            "name_accuracy": sum(1 for r in rows if r.get("names_ok")) / len(rows) if rows else None,
            "argument_accuracy": sum(1 for c in calls if c["arguments_ok"]) / len(calls) if calls else None,
            "n_reference_calls": len(calls),
            "per_function": dict(sorted(per_function.items())),
            "matrix_labels": labels,
            "confusion_matrix": matrix,
            "tables": {
                "per_function": {
                    "columns": ["function", "n", "name_accuracy", "argument_accuracy"],
                    "data": [
                        [name, e["n"], e["name_accuracy"], e["argument_accuracy"]]
                        for name, e in sorted(per_function.items())
                    ],
                }
            },
        }

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(arguments={self.arguments!r})>"


@builtin
def tool_call_match(
    *,
    arguments: Literal["exact", "subset"] = "exact",
    ignore_case: bool = False,
    normalize_whitespace: bool = False,
    normalize_numbers: bool = True,
    normalize: Mapping[str, Sequence[str]] | None = None,
    order_insensitive: bool = True,
    name: str = "tool_call_match",
) -> ToolCallMatch:
    """1 when the answer calls the reference's function(s) with the reference's arguments, else 0.

    ``arguments``: ``"exact"`` (parsed JSON equal) or ``"subset"`` (the reference's keys are present with
    equal values; extra keys allowed). ``ignore_case`` / ``normalize_whitespace`` / ``normalize_numbers``
    (``1``, ``1.0`` and ``"1"`` equal) apply to every argument; ``normalize={"city": ["case"]}`` sets them
    per key (a key name or a dotted path). ``order_insensitive``: parallel calls may come in any order.
    A reference that answers with text expects no call. Details: ``name_accuracy``, ``argument_accuracy``,
    ``per_function`` and a confusion table of the called names.
    """
    return ToolCallMatch(
        arguments=arguments,
        ignore_case=ignore_case,
        normalize_whitespace=normalize_whitespace,
        normalize_numbers=normalize_numbers,
        normalize=normalize,
        order_insensitive=order_insensitive,
        name=name,
    )
