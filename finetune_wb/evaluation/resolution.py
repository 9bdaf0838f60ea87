"""Evaluator resolution: the one place that turns what a user names into evaluator objects.

:func:`resolve_evaluators` normalises the ``evaluators=`` argument of ``evaluate`` (objects, functions,
built-in factories and texts); :func:`evaluator_from_spec` builds what one text names — an
``--evaluator`` on the command line, a string in ``evaluators=[...]`` or an entry of a config file (there
with keyword arguments from the file). Built-ins are looked up in their registry,
:data:`~finetune_wb.evaluation.builtin_evaluators.BUILTIN_EVALUATORS`.

Text forms (see docs/evaluation.md, "Choosing evaluators by name"):

* ``NAME`` — a built-in with its defaults: ``exact_match``, ``contains``, ``regex``, ``json_valid``,
  ``json_match``, ``classification``, ``llm_judge`` (every registered one).
* ``NAME:VALUE`` — a built-in with its first argument set: ``contains:Yes``, ``regex:^(Yes|No)$``,
  ``classification:Yes|No`` (labels are separated by ``|``), ``llm_judge:Answers must cite the clause``.
* ``NAME:KEY=VALUE,KEY=VALUE`` — keyword arguments: ``regex:pattern=^yes,ignore_case=true``,
  ``llm_judge:model=gpt-4o,max_tokens=300``, ``exact_match:ignore_case=false,name=strict``. A comma starts a
  new argument only when ``KEY=`` follows it, so ``regex:pattern=\\d{1,3}`` keeps its comma.
* ``NAME:{JSON object}`` — keyword arguments as JSON, for values no other form can carry.
* ``MODULE:ATTRIBUTE`` or ``path/to/file.py:ATTRIBUTE`` — a custom evaluator (a function, an ``@evaluator``,
  an :class:`~finetune_wb.evaluation.Evaluator` object or class). The current directory is importable.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation import (  # noqa: F401  (their built-ins register themselves on import)
    preference_evaluators,
    structured_evaluators,
    tool_evaluators,
)
from finetune_wb.evaluation.builtin_evaluators import BUILTIN_EVALUATORS, exact_match, is_builtin_factory
from finetune_wb.evaluation.evaluators import FunctionEvaluator

__all__ = ["evaluator_from_spec", "resolve_evaluators"]

_KEY = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(.*)$", re.DOTALL)
_ARG_SPLIT = re.compile(r",(?=\s*[A-Za-z_]\w*\s*=)")
_NOT_FROM_TEXT = {"client"}  # objects, not text: set them from Python
_WHOLE_JSON_IS = {"json_schema": "schema"}  # NAME:{JSON} whose keys are not arguments is this argument
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def resolve_evaluators(items: Any) -> list[Any]:
    """Normalise the ``evaluators=`` argument into evaluator objects, in order; default ``exact_match``.

    Items may be texts (see the module docstring), built-in factories (their defaults), configured
    evaluators, objects with ``name`` and ``ascore`` (the :class:`~finetune_wb.evaluation.Evaluator`
    protocol) or plain functions. Two evaluators with one name are an error: the report keys on names.
    """
    if items is None:
        items = [exact_match]
    if not isinstance(items, (list, tuple)):
        items = [items]
    out = [_evaluator_object(evaluator_from_spec(item) if isinstance(item, str) else item) for item in items]
    names = [e.name for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EvaluationError(f"two evaluators share the name(s) {dupes}; give one a different name=")
    return out


def _evaluator_object(item: Any) -> Any:
    if is_builtin_factory(item):
        return item()
    if hasattr(item, "ascore") and hasattr(item, "name"):
        if not hasattr(item, "params"):
            item.params = {}
        return item
    if callable(item):
        return FunctionEvaluator(item)
    raise EvaluationError(f"not an evaluator: {item!r} (pass a function, a name or an Evaluator)")


def evaluator_from_spec(
    spec: str, kwargs: Mapping[str, Any] | None = None, *, base_dir: str | Path | None = None
) -> Any:
    """What the text ``spec`` names: a built-in factory or configured built-in, or a custom evaluator.

    ``kwargs`` (a config file's entry ``{name = "classification", labels = [...]}``) configure a built-in
    named without arguments; a bare built-in name without them gives the factory itself. ``base_dir``
    anchors a relative ``file.py:FUNCTION`` (a config file's directory); without it, the current directory.
    """
    text = spec.strip()
    name, sep, rest = text.partition(":")
    name = name.strip()
    if name in BUILTIN_EVALUATORS and not sep:
        factory = BUILTIN_EVALUATORS[name]
        if not kwargs:
            return factory
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise EvaluationError(f"evaluator {name!r} does not accept {sorted(kwargs)}: {exc}") from exc
    if not sep:
        raise EvaluationError(
            f"unknown evaluator {text!r}; built-ins are {', '.join(BUILTIN_EVALUATORS)}, and a custom one is "
            "named MODULE:FUNCTION or path/to/file.py:FUNCTION"
        )
    if kwargs:
        raise EvaluationError(
            f"evaluator {text!r}: arguments go in the spec itself, not as extra keys {sorted(kwargs)}"
        )
    if name in BUILTIN_EVALUATORS:
        factory = BUILTIN_EVALUATORS[name]
        return factory(**_builtin_kwargs(name, factory, rest))
    target, _, attr = text.rpartition(":")
    if base_dir is not None and target.endswith(".py") and not Path(target).expanduser().is_absolute():
        text = f"{Path(base_dir) / target}:{attr}"
    return _import_evaluator(text)


def _builtin_kwargs(name: str, factory: Any, rest: str) -> dict[str, Any]:
    params = {
        p.name: p
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _NOT_FROM_TEXT
    }
    accepted = ", ".join(params)
    raw: dict[str, Any]
    if rest.lstrip().startswith("{"):
        try:
            loaded = json.loads(rest)
        except ValueError as exc:
            raise EvaluationError(
                f"evaluator {name!r}: arguments {rest!r} are not a JSON object ({exc})"
            ) from None
        if not isinstance(loaded, dict):
            raise EvaluationError(f"evaluator {name!r}: arguments must be a JSON object, got {rest!r}")
        raw = loaded
        whole = _WHOLE_JSON_IS.get(name)
        if whole is not None and not set(loaded) <= set(params):  # json_schema:{"type": ...}: the schema
            raw = {whole: loaded}
    elif _KEY.match(rest):
        raw = {}
        for part in _ARG_SPLIT.split(rest):
            m = _KEY.match(part)
            assert m is not None  # the split only cuts before KEY=
            raw[m.group(1)] = m.group(2)
    else:
        first = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        if not first:
            raise EvaluationError(
                f"evaluator {name!r} takes keyword arguments only ({accepted}); write {name}:KEY=VALUE"
            )
        raw = {first[0].name: rest}
    unknown = sorted(set(raw) - set(params))
    if unknown:
        raise EvaluationError(
            f"evaluator {name!r} has no argument(s) {unknown}; it accepts {accepted} (a value that itself "
            f"starts with WORD= needs its key: {name}:{next(iter(params))}=VALUE)"
        )
    return {k: _convert(name, k, v, str(params[k].annotation)) for k, v in raw.items()}


def _convert(evaluator: str, key: str, value: Any, annotation: str) -> Any:
    """A text value -> the type the factory's annotation asks for (JSON values pass through)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    where = f"evaluator {evaluator!r}, argument {key!r}"
    if annotation.startswith("bool"):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise EvaluationError(f"{where}: {value!r} is not true/false")
    if annotation.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise EvaluationError(f"{where}: {value!r} is not a whole number") from None
    if "Sequence" in annotation or "list" in annotation:
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise EvaluationError(f"{where}: {value!r} is not a JSON list ({exc})") from None
            return [str(i) for i in items]
        return [item.strip() for item in text.split("|") if item.strip()]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            pass
    return value


def _import_evaluator(spec: str) -> Any:
    target, _, attr = spec.rpartition(":")
    target, attr = target.strip(), attr.strip()
    if not target or not attr.isidentifier():
        raise EvaluationError(
            f"evaluator {spec!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION (a Python name after ':')"
        )
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            module = _module_from_file(Path(target))
        else:
            module = _import_module(target)
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(
            f"evaluator {spec!r}: cannot import {target!r} ({type(exc).__name__}: {exc}); make it importable "
            "(PYTHONPATH or the current directory) or name its file: path/to/file.py:FUNCTION"
        ) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise EvaluationError(f"evaluator {spec!r}: {target!r} has no attribute {attr!r}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except TypeError as exc:
            raise EvaluationError(
                f"evaluator {spec!r}: the class {attr} needs arguments ({exc}); expose a configured instance"
            ) from None
    return obj


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        cwd = str(Path.cwd())
        if exc.name != name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.insert(0, cwd)  # as `python -m` would: modules next to the user are importable
        try:
            return importlib.import_module(name)
        finally:
            if cwd in sys.path:
                sys.path.remove(cwd)


def _module_from_file(path: Path) -> Any:
    if not path.is_file():
        raise EvaluationError(f"evaluator file {path} does not exist")
    module_name = f"_finetune_wb_evaluator_{abs(hash(str(path.resolve())))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise EvaluationError(f"evaluator file {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
