"""The layers stay visible: every import points down (function-level imports included) and none forms a cycle.

    app            streamlit_app.py, pages/, brainscan/app/
    orchestration  brainscan/{check,cli,bench,appserver,__main__,hosting,janitor}.py, brainscan/runs/
    training / evaluation  brainscan/training/, brainscan/evaluation/
    runtime        brainscan/runtime/
    cam            brainscan/cam/
    scans          brainscan/scans/
    model / run folder  brainscan/modelfolder.py, brainscan/runfolder.py (leaves above the foundation)
    foundation     brainscan/__init__.py, errors.py, config.py, formatting.py, comparison.py (leaves)

Imports within one layer are allowed as long as they form no cycle. The checker reads the source with
ast, so it sees imports inside functions too; it is tried on a small synthetic package first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {  # module name or package prefix -> rank (higher may import lower)
    "brainscan": 0, "brainscan.errors": 0, "brainscan.config": 0, "brainscan.formatting": 0, "brainscan.comparison": 0,
    "brainscan.modelfolder": 1, "brainscan.runfolder": 1,
    "brainscan.scans": 2,
    "brainscan.cam": 3,
    "brainscan.runtime": 4,
    "brainscan.training": 5, "brainscan.evaluation": 5,
    "brainscan.check": 6, "brainscan.runs": 6, "brainscan.cli": 6, "brainscan.bench": 6, "brainscan.appserver": 6,
    "brainscan.__main__": 6, "brainscan.hosting": 6, "brainscan.janitor": 6, "brainscan.volume_check": 6,
    "brainscan.app": 7, "pages": 7, "streamlit_app": 7,
}


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the given top-level folders or files."""
    out: dict[str, Path] = {}
    for top in packages:
        base = root / top
        files = [base.with_suffix(".py")] if base.with_suffix(".py").is_file() else sorted(base.rglob("*.py"))
        for f in files:
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules that path imports anywhere in its code (the most specific module of each import)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def resolve(dotted: str) -> None:
        parts = dotted.split(".")
        for k in range(len(parts), 0, -1):
            candidate = ".".join(parts[:k])
            if candidate in known:
                if candidate != name:
                    found.add(candidate)
                return

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # `from pkg import module` names a module; `from module import name` does not
                resolve(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        rank = layers.get(".".join(parts[:k]))
        if rank is not None:
            return rank
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path, packages: tuple[str, ...], layers: dict[str, int]) -> list[str]:
    """Every problem as one line: unplaced modules, upward imports, cycles."""
    files = module_files(root, packages)
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}
    problems = [f"{m} belongs to no layer" for m in sorted(files) if layer_of(m, layers) is None]
    for src in sorted(graph):
        for dst in sorted(graph[src]):
            a, b = layer_of(src, layers), layer_of(dst, layers)
            if a is not None and b is not None and b > a:
                problems.append(f"upward import: {src} (layer {a}) imports {dst} (layer {b})")
    problems += [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    return problems


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checker_reports_an_upward_import_and_a_cycle_hidden_in_functions(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "low" / "__init__.py", "")
    write(tmp_path / "pkg" / "low" / "a.py", "def f():\n    from pkg.high import b\n")  # upward, inside a function
    write(tmp_path / "pkg" / "high" / "__init__.py", "")
    write(tmp_path / "pkg" / "high" / "b.py", "from pkg.low import a\nfrom . import c\n")
    write(tmp_path / "pkg" / "high" / "c.py", "def g():\n    import pkg.high.b\n")
    write(tmp_path / "pkg" / "stray.py", "")
    layers = {"pkg": 0, "pkg.low": 1, "pkg.high": 2}
    problems = check(tmp_path, ("pkg",), layers)
    assert "upward import: pkg.low.a (layer 1) imports pkg.high.b (layer 2)" in problems
    assert "import cycle: pkg.high.b <-> pkg.high.c <-> pkg.low.a" in problems
    assert not any("stray" in p for p in problems)  # placed by its package's rank
    del layers["pkg"]
    assert "pkg.stray belongs to no layer" in check(tmp_path, ("pkg",), layers)


def test_the_checker_passes_a_clean_package(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "low.py", "import os\n")
    write(tmp_path / "pkg" / "high.py", "from pkg import low\nfrom .low import os\n")
    assert check(tmp_path, ("pkg",), {"pkg": 0, "pkg.low": 1, "pkg.high": 2}) == []


def test_brainscan_imports_only_point_down_and_form_no_cycle():
    problems = check(ROOT, ("brainscan", "pages", "streamlit_app"), LAYERS)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("leaf", ["brainscan.errors", "brainscan.config", "brainscan.modelfolder"])
def test_the_leaves_import_nothing_above_the_foundation(leaf):
    files = module_files(ROOT, ("brainscan",))
    assert {layer_of(m, LAYERS) for m in imports_of(leaf, files[leaf], set(files))} <= {0}


def test_the_run_folder_is_a_leaf_beside_the_model_folder():
    files = module_files(ROOT, ("brainscan",))
    found = imports_of("brainscan.runfolder", files["brainscan.runfolder"], set(files))
    assert found <= {"brainscan.config", "brainscan.errors", "brainscan.modelfolder"}, found
