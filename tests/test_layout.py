"""The layout's rules, checked: stages import only the stages below them, no import cycles anywhere, and
every public face (``_EXPORTS`` of the package and its subpackages) names the module that defines the name.

The layer and cycle contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are also run by
``make lint``; the cycle test below is an independent check that needs nothing but the standard library.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import finetune_wb

PACKAGE = Path(finetune_wb.__file__).resolve().parent
REPO = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every finetune_wb module ``module`` imports: at the top, inside functions and under TYPE_CHECKING."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    found.add(f"{source}.{alias.name}")
                elif source in known:
                    found.add(source)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_counting_function_and_type_checking_imports() -> None:
    modules = _modules()
    known = set(modules)
    # The root package is the public face: it imports every stage and nothing imports it.
    graph = {m: _imported(m, p, known) - {"finetune_wb"} for m, p in modules.items()}
    importers_of_root = sorted(m for m, p in modules.items() if "finetune_wb" in _imported(m, p, known))
    assert importers_of_root == [], (
        f"modules that import the root package (import the defining module): {importers_of_root}"
    )
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check above can fail: a two-module and a three-module cycle are both found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_import_linter_contracts_hold() -> None:
    """Layers (cli > demo > session | emulator > config > evaluation > tracking > jobs > validation > data >
    shared leaves), the emulator's independence, and no cycles between siblings: see pyproject.toml."""
    exe = Path(sys.executable).parent / "lint-imports"
    command = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert command, "import-linter is not installed: pip install -e '.[dev]'"
    result = subprocess.run(
        [command, "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _faces() -> list[str]:
    return sorted(m for m, p in _modules().items() if p.name == "__init__.py" and "_EXPORTS" in p.read_text())


def _defined_at_top(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("face", _faces())
def test_every_export_points_at_the_module_that_defines_it(face: str) -> None:
    package = importlib.import_module(face)
    modules = _modules()
    for name, target in package._EXPORTS.items():
        module = f"{face}{target}" if target.startswith(".") else target
        assert module in modules, (face, name, module)
        assert name in _defined_at_top(modules[module]), f"{face}: {name} is not defined in {module}"
        assert getattr(package, name) is getattr(importlib.import_module(module), name)
    assert set(package._EXPORTS) <= set(package.__all__)


def test_every_stage_has_a_public_face() -> None:
    stages = {
        "data",
        "validation",
        "providers",
        "jobs",
        "tracking",
        "evaluation",
        "session",
        "config",
        "emulator",
    }
    assert {f"finetune_wb.{s}" for s in stages} <= set(_faces())
