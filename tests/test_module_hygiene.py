"""Module hygiene of src/frugalml: no module imports another module's private (``_name``)
functions or classes, and no import cycles inside an area."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "frugalml"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    if node.level == 0:
        return node.module or ""
    return importlib.util.resolve_name("." * node.level + (node.module or ""), package)


def _is_module(name: str) -> bool:
    return (SRC.parent / name.replace(".", "/")).with_suffix(".py").exists() or (
        SRC.parent / name.replace(".", "/") / "__init__.py"
    ).exists()


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(source module, imported name, line) of every ``from frugalml... import name``."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(path, node)
            if source.startswith("frugalml"):
                out.extend((source, alias.name, node.lineno) for alias in node.names)
    return out


def test_no_module_imports_private_names_of_another():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for source, name, line in _imports(path):
            if (
                name.startswith("_")
                and not name.startswith("__")
                and not _is_module(f"{source}.{name}")
            ):
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {name} from {source}")
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)


def test_no_import_cycles_within_an_area():
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        mod = _module_name(path)
        deps = graph.setdefault(mod, set())
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # function-level imports count: they only hide a cycle
            if isinstance(node, ast.ImportFrom):
                source = _resolve(path, node)
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    target = full if _is_module(full) else source
                    if (
                        target != mod
                        and target.startswith("frugalml.")
                        and not target.endswith(".__init__")
                    ):
                        deps.add(target)
    # ignore edges into packages (their __init__ re-exports)
    packages = {m for m in graph if (SRC.parent / m.replace(".", "/") / "__init__.py").exists()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep in packages:
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state and node not in packages:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
