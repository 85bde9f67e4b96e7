"""The package's layers: imports only go down, and no module imports itself back through a cycle.

Walks ``src/rnnlab`` with ``ast`` (imports inside functions included) and checks every import against
``LAYERS``. ``docs/architecture.md`` describes what each layer owns.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# lowest first; a module may import from its own layer and the layers before it
LAYERS = [
    ("core", ("rnnlab._validation", "rnnlab._files", "rnnlab._errors", "rnnlab._version", "rnnlab._startup",
              "rnnlab._threads")),
    ("optim", ("rnnlab.optim",)),
    ("nn", ("rnnlab.nn",)),
    ("io", ("rnnlab.io",)),
    ("data", ("rnnlab.data",)),
    ("generate", ("rnnlab.generate",)),
    ("training", ("rnnlab.training",)),
    ("lab", ("rnnlab.lab",)),
    ("cli", ("rnnlab.cli",)),
    ("api", ("rnnlab", "rnnlab._moved", "rnnlab.__main__", "rnnlab.onnx")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "rnnlab").rglob("*.py"))}


def layer_of(module: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    if best is None:
        raise AssertionError(f"module {module} is in no layer of LAYERS; add it to one")
    return best[0]


def imports_of(module: str, source: str | None = None) -> list[tuple[str, int]]:
    """``(imported rnnlab module, line)`` for every import in ``module``: ``from a import b`` counts as an
    import of ``a.b`` when that is a module, else of ``a``."""
    path = MODULES.get(module, SRC / Path(*module.split(".")).with_suffix(".py"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "rnnlab"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "rnnlab":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return sorted(set(found), key=lambda item: item[1])


def where(module: str, line: int) -> str:
    path = MODULES.get(module, SRC / Path(*module.split(".")).with_suffix(".py"))
    return f"{path.relative_to(SRC.parent)}:{line}"


def upward_imports(module: str, source: str | None = None) -> list[str]:
    mine = layer_of(module)
    return [f"{where(module, line)} imports {target} (layer {LAYERS[layer_of(target)][0]}, above {LAYERS[mine][0]})"
            for target, line in imports_of(module, source) if layer_of(target) > mine]


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    upward = upward_imports(module)
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in imports_of(m) if t in MODULES and t != m}) for m in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    lines = []
    for cycle in cycles:
        steps = [f"{a} -> {b} ({where(a, next(line for t, line in imports_of(a) if t == b))})"
                 for a, b in zip(cycle, cycle[1:], strict=False)]
        lines.append("; ".join(steps))
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def test_the_checker_sees_an_upward_import_even_inside_a_function():
    """The checks above can fail: an nn module importing the trainer is named with its file and line."""
    source = "import numpy\n\n\ndef f():\n    from rnnlab.training import Trainer\n    return Trainer\n"
    assert upward_imports("rnnlab.nn.fake", source) == [
        "src/rnnlab/nn/fake.py:5 imports rnnlab.training (layer training, above nn)"]
    assert upward_imports("rnnlab.training.fake", source) == []
