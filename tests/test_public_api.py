from __future__ import annotations

import importlib
import subprocess
import sys

import finetune_wb


def test_all_is_sorted_and_resolvable() -> None:
    assert finetune_wb.__all__ == sorted(finetune_wb.__all__)
    for name in finetune_wb.__all__:
        assert getattr(finetune_wb, name) is not None, name


def test_all_matches_exports() -> None:
    assert set(finetune_wb.__all__) == set(finetune_wb._EXPORTS) | {"__version__"}
    for name, module in finetune_wb._EXPORTS.items():
        assert hasattr(importlib.import_module(module), name), (name, module)


def test_unknown_attribute_raises() -> None:
    try:
        finetune_wb.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_loads_no_heavy_packages() -> None:
    code = (
        "import sys, finetune_wb; "
        "heavy = [m for m in ('wandb', 'openai', 'datasets', 'pandas', 'tiktoken', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_static_reexports_match_exports() -> None:
    """The TYPE_CHECKING block (for type checkers and IDEs) names exactly the lazily exported names."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(finetune_wb.__file__).read_text())
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    static = {
        (alias.asname or alias.name, node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert static == set(finetune_wb._EXPORTS.items())
