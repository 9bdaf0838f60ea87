"""Structured outputs: ``json_schema`` (the answer validates against a JSON Schema) and ``json_fields``
(per-field accuracy of an extraction, with a table of which fields are right across the set).

The JSON of an answer is its text (a Markdown code fence around it is removed), or, when the answer has no
text and calls one function, that call's arguments; the same holds for the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.builtin_evaluators import _parse_json, builtin
from finetune_wb.evaluation.evaluators import Score
from finetune_wb.evaluation.json_schemas import load_schema, validator_for
from finetune_wb.evaluation.tool_calls import reference_calls

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample

__all__ = ["JsonFields", "JsonSchema", "json_fields", "json_schema"]


def json_text(output: str, calls: Sequence[dict[str, str]] | None) -> str:
    """The text holding an answer's JSON: its text, else the arguments of its only tool call."""
    if output.strip() or not calls or len(calls) != 1:
        return output
    return calls[0].get("arguments", "")


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` for the nested objects of ``value`` (lists and scalars are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "(value)": value}


class JsonSchema:
    """The ``json_schema`` evaluator; build it with :func:`json_schema`."""

    def __init__(self, schema: Any, *, strip_fences: bool, name: str) -> None:
        self.name = name
        self.schema = load_schema(schema, where=f"evaluator {name!r}")
        self._validator = validator_for(self.schema, where=f"evaluator {name!r}")
        self.strip_fences = strip_fences
        self.params: dict[str, Any] = {"schema": self.schema, "strip_fences": strip_fences}

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        return self.score_text(output)

    async def ascore_answer(self, answer: Any, example: ChatExample) -> Score:
        return self.score_text(json_text(answer.output or "", answer.tool_calls))

    def score_text(self, text: str) -> Score:
        ok, value = _parse_json(text, strip_fences=self.strip_fences)
        if not ok:
            return Score(value=0.0, binary=True, explanation=f"answer is not JSON: {text[:120]!r}")
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if not errors:
            return Score(value=1.0, binary=True)
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(root)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return Score(value=0.0, binary=True, explanation=f"schema violation at {at}: {first.message}{more}")

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(schema=...)>"


@builtin
def json_schema(schema: Any = None, *, strip_fences: bool = True, name: str = "json_schema") -> JsonSchema:
    """1 when the answer is JSON that validates against ``schema`` (a dict, JSON text or ``.json`` path),
    else 0 with the first violation as the note. Needs ``jsonschema`` (``finetune-wb[structured]``); a
    schema that is not a valid JSON Schema is an error before any request."""
    from finetune_wb.errors import EvaluationError

    if schema is None:
        raise EvaluationError(
            "evaluator 'json_schema' needs a schema: json_schema:{...JSON Schema...} on the command line, "
            "json_schema(schema) in Python, or json_schema:path/to/schema.json"
        )
    return JsonSchema(schema, strip_fences=strip_fences, name=name)


class JsonFields:
    """The ``json_fields`` evaluator; build it with :func:`json_fields`."""

    def __init__(
        self, keys: Sequence[str] | None, *, strip_fences: bool, ignore_case: bool, name: str
    ) -> None:
        self.name = name
        self.keys = list(keys) if keys is not None else None
        self.strip_fences = strip_fences
        self.ignore_case = ignore_case
        self.params: dict[str, Any] = {
            "keys": self.keys,
            "strip_fences": strip_fences,
            "ignore_case": ignore_case,
        }

    def _same(self, want: Any, got: Any) -> bool:
        if isinstance(want, bool) or isinstance(got, bool):
            return bool(want is got)
        if isinstance(want, (int, float)) and isinstance(got, (int, float)):
            return float(want) == float(got)
        if self.ignore_case and isinstance(want, str) and isinstance(got, str):
            return " ".join(want.split()).casefold() == " ".join(got.split()).casefold()
        return bool(want == got)

    async def ascore(self, output: str, target: str, example: ChatExample) -> Score:
        return self.score_texts(output, self._reference_text(target, example))

    async def ascore_answer(self, answer: Any, example: ChatExample) -> Score:
        return self.score_texts(
            json_text(answer.output or "", answer.tool_calls), self._reference_text(example.target, example)
        )

    @staticmethod
    def _reference_text(target: str, example: ChatExample) -> str:
        return json_text(target, reference_calls(example))

    def score_texts(self, output: str, reference: str) -> Score:
        ok_r, want = _parse_json(reference, strip_fences=self.strip_fences)
        if not ok_r:
            return Score(value=None, explanation="reference is not JSON")
        fields = _leaves(want)
        if self.keys is not None:
            fields = {k: v for k, v in fields.items() if k in self.keys or k.split(".")[0] in self.keys}
        if not fields:
            return Score(value=None, explanation="reference has none of the fields to check")
        ok_o, got = _parse_json(output, strip_fences=self.strip_fences)
        got_fields = _leaves(got) if ok_o else {}
        right = {k: k in got_fields and self._same(v, got_fields[k]) for k, v in fields.items()}
        wrong = [k for k, ok in right.items() if not ok]
        note = None
        if not ok_o:
            note = f"answer is not JSON: {output[:120]!r}"
        elif wrong:
            note = "wrong or missing: " + ", ".join(wrong[:10])
        value = sum(right.values()) / len(right)
        return Score(value=value, explanation=note, details={"fields": right})

    def aggregate(self, scores: Sequence[Score], targets: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
        """Per field: how many scored rows hold it in the reference and the share answered right."""
        counts: dict[str, list[int]] = {}
        for s in scores:
            for field, ok in ((s.details or {}).get("fields") or {}).items():
                entry = counts.setdefault(field, [0, 0])
                entry[0] += 1
                entry[1] += int(ok)
        per_field = {k: {"n": n, "accuracy": right / n} for k, (n, right) in sorted(counts.items())}
        perfect = sum(1 for s in scores if s.value == 1.0)
        return {
            "all_fields_right": perfect / len(scores) if scores else None,
            "per_field": per_field,
            "tables": {
                "per_field": {
                    "columns": ["field", "n", "accuracy"],
                    "data": [[k, v["n"], v["accuracy"]] for k, v in per_field.items()],
                }
            },
        }

    def __repr__(self) -> str:
        return f"<evaluator {self.name}(keys={self.keys!r})>"


@builtin
def json_fields(
    keys: Sequence[str] | None = None,
    *,
    strip_fences: bool = True,
    ignore_case: bool = False,
    name: str = "json_fields",
) -> JsonFields:
    """Per-field accuracy of a JSON answer against the reference's JSON: the share of the reference's fields
    (nested objects flattened to dotted paths; only ``keys``, when given) the answer has with equal values.
    Details: ``per_field`` (n, accuracy per field across the set) and ``all_fields_right``."""
    return JsonFields(keys, strip_fences=strip_fences, ignore_case=ignore_case, name=name)
