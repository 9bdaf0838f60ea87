"""Lazy public faces for the package and its subpackages (PEP 562).

Each ``__init__`` names what it exports and the module that defines it; the module is imported on first
attribute access, so importing a package (or one of its submodules) never loads its siblings, and
``import finetune_wb`` loads none of openai, wandb, datasets or pandas.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``; ``exports`` maps a name to its defining module.

    A module in ``exports`` is written relative to ``package`` with a leading dot (``".template"``) or
    absolute (``"finetune_wb.errors"``). A resolved name is cached in ``namespace`` (the package globals).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = f"{package}{module}" if module.startswith(".") else module
        value = getattr(importlib.import_module(target), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
