"""The package layout: every ferlib import points down the pipeline, no module grows past about 400 lines."""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FERLIB = Path(__file__).resolve().parents[1] / "ferlib"
# lowest first: a module may import its own level and the levels before it, never one after it. Data comes
# in (data), is drawn (viz) and scored (evaluation: metrics take any model), networks are built (models),
# audited (audit), trained (training), C1 trained, ablated and distilled (champion, whose scores are split
# by the audit's copies), used on photos (photos), reported (reports), planned (plan) and benchmarked (bench);
# the command line sits on top.
LEVELS = [
    {"classes", "config", "experiments", "study", "runnames", "weights"},
    {"runtime"}, {"data"}, {"viz"}, {"evaluation"}, {"models"}, {"audit"}, {"training"}, {"champion"},
    {"photos"}, {"reports"},
    {"estimate", "stacks"}, {"plan"}, {"runner"}, {"bench"}, {"cli", "__main__", "__init__"},
]
MAX_LINES = 350  # a module longer than this is a sign that it does two jobs
MAX_FUNCTION_LINES = 80  # a function longer than this reads better as named steps


def level_of(module: str) -> int:
    """Return the level of a dotted module under ferlib (its top folder or top-level name)."""
    top = module.split(".")[1] if module.startswith("ferlib.") else module
    for i, names in enumerate(LEVELS):
        if top in names:
            return i
    raise AssertionError(f"{module} belongs to no level of {LEVELS}")


def ferlib_imports(path: Path) -> set[str]:
    """Return the ferlib modules a file imports (at the top or inside functions)."""
    return {imp.module for imp in imports_of(path)}


@dataclass(frozen=True)
class Import:
    """One ferlib module imported by a file: where, whether inside a function, and the comment on that line."""

    module: str
    line: int
    lazy: bool
    comment: str


def _resolved(module: str, name: str) -> str:
    """Return `module.name` when it is a module of ferlib (``from ferlib.champion import run``), else `module`."""
    candidate = f"{module}.{name}"
    parts = candidate.split(".")[1:]
    return candidate if (FERLIB.joinpath(*parts).with_suffix(".py").is_file()
                         or FERLIB.joinpath(*parts, "__init__.py").is_file()) else module


def imports_of(path: Path) -> list[Import]:
    """Return every import of a ferlib module in a file, each with its line, whether it happens inside a
    function (lazily) and the comment on its first line."""
    text = path.read_text()
    lines = text.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").startswith("ferlib"):
                names = [_resolved(child.module, alias.name) for alias in child.names]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names if alias.name.startswith("ferlib.")]
            line = lines[child.lineno - 1] if names else ""
            comment = line.split("#", 1)[1].strip() if "#" in line else ""
            found.extend(Import(name, child.lineno, lazy, comment) for name in dict.fromkeys(names))
            visit(child, inside)

    visit(ast.parse(text), False)
    return found


MODULES = sorted(p for p in FERLIB.rglob("*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(FERLIB.parent).with_suffix("")
    return ".".join(rel.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(FERLIB)))
def test_imports_point_down_the_pipeline(path):
    own = level_of(module_name(path) if path.name != "__init__.py" or path.parent != FERLIB else "__init__")
    for imported in ferlib_imports(path):
        if imported in ("ferlib", "ferlib.classes"):
            continue
        assert level_of(imported) <= own, f"{module_name(path)} imports {imported}, which lies above it"


def test_no_module_is_too_long():
    long = {module_name(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_no_function_is_too_long():
    long = {f"{module_name(p)}.{node.name}": node.end_lineno - node.lineno + 1 for p in MODULES
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES}
    assert not long, f"split these functions into named steps: {long}"


def test_every_folder_says_what_it_holds():
    for init in FERLIB.glob("*/__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init.parent.name}/__init__.py has no docstring"


def _circles() -> list[set[str]]:
    """Return the groups of ferlib modules that import each other, directly or through others (imports inside
    functions included): the strongly connected components of the import graph with more than one module."""
    names = {module_name(p): p for p in MODULES}

    def resolve(imported: str) -> str | None:
        return imported if imported in names else (f"{imported}.__init__" if f"{imported}.__init__" in names else None)

    graph = {m: {r for i in ferlib_imports(p) if (r := resolve(i)) and r != m} for m, p in names.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_modules_import_each_other():
    assert not _circles(), f"modules importing each other (imports inside functions included): {_circles()}"


# Inside ferlib.champion, each module imports only those before it (issue 28's order).
CHAMPION_ORDER = [{"recipe"}, {"tables"}, {"records"}, {"run"}, {"ablation", "distillation"}, {"commands"}]


@pytest.mark.parametrize("path", sorted((FERLIB / "champion").glob("*.py")), ids=lambda p: p.name)
def test_champion_modules_import_only_those_before_them(path):
    def rank(name: str) -> int:
        return next(i for i, names in enumerate(CHAMPION_ORDER) if name in names)

    if path.name == "__init__.py":
        assert not imports_of(path)
        return
    own = rank(path.stem)
    for imported in imports_of(path):
        if imported.module.startswith("ferlib.champion."):
            assert rank(imported.module.split(".")[2]) < own, f"{path.name} imports {imported.module}"


# An import of ferlib inside a function is allowed only to keep a heavy library out of a light path (the command
# line's start, `import ferlib`, predicting with LiteRT), or any installed library out of what the planner imports
# with a bare Python: what it imports must bring one in at import time, and its line says why (`# lazy: ...`).
# Outside the command-line modules there may be at most 30.
HEAVY_LIBRARIES = {"tensorflow", "keras", "matplotlib", "cv2"}
MAX_LAZY = 30


def _is_command_module(path: Path) -> bool:
    return path.name in ("commands.py", "cli.py")


def _imported_at_import(module: str, seen: set[str] | None = None) -> tuple[set[str], set[str]]:
    """Return (the ferlib modules, the top-level names of the libraries) that importing `module` imports: the
    imports at the top of it and of the ferlib modules it so imports, parent packages included."""
    seen = set() if seen is None else seen
    if module in seen or not module.startswith("ferlib"):
        return set(), set()
    seen.add(module)
    parts = module.split(".")[1:]
    path = FERLIB.joinpath(*parts).with_suffix(".py") if parts else FERLIB / "__init__.py"
    if not path.is_file():
        path = FERLIB.joinpath(*parts, "__init__.py")
    modules, libraries = {module}, set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            libraries |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            libraries.add(node.module.split(".")[0])
    nested = [imp.module for imp in imports_of(path) if not imp.lazy]
    nested += [".".join(module.split(".")[:i]) for i in range(1, len(module.split(".")))]  # its packages
    for other in nested:
        more_modules, more_libraries = _imported_at_import(other, seen)
        modules |= more_modules
        libraries |= more_libraries
    return modules, libraries


def _top_level_libraries(module: str) -> set[str]:
    return _imported_at_import(module)[1]


# run_all.sh plans the run (`python -m ferlib.plan`) with a bare Python, before it installs anything: what that
# imports may use the standard library only, and a lazy import there may keep any installed library out.
THIRD_PARTY = lambda libraries: libraries - set(sys.stdlib_module_names) - {"ferlib", "__future__"}  # noqa: E731
BARE_PYTHON_MODULES = _imported_at_import("ferlib.plan")[0]


def test_the_planner_imports_with_a_bare_python():
    assert not THIRD_PARTY(_top_level_libraries("ferlib.plan")), "ferlib.plan must run before anything is installed"


def _lazy_imports() -> list[tuple[Path, Import]]:
    return [(path, imp) for path in MODULES for imp in imports_of(path) if imp.lazy]


def test_every_lazy_import_of_ferlib_says_why():
    unexplained = [f"{p.relative_to(FERLIB)}:{imp.line} {imp.module}" for p, imp in _lazy_imports()
                   if not imp.comment.startswith("lazy:") or len(imp.comment) < len("lazy: ") + 10]
    assert not unexplained, f"imports inside functions without a `# lazy: reason`: {unexplained}"


def test_lazy_imports_outside_the_command_line_are_few_and_keep_something_heavy_out():
    outside = [(p, imp) for p, imp in _lazy_imports() if not _is_command_module(p)]
    assert len(outside) <= MAX_LAZY, f"{len(outside)} imports inside functions outside the command-line modules"
    light = [f"{p.relative_to(FERLIB)}:{imp.line} {imp.module}" for p, imp in outside
             if not (_top_level_libraries(imp.module) & HEAVY_LIBRARIES
                     or (module_name(p) in BARE_PYTHON_MODULES and THIRD_PARTY(_top_level_libraries(imp.module))))]
    assert not light, f"imported inside a function, but light enough to import at the top: {light}"


def test_the_layout_checks_see_imports_inside_functions_and_packages(tmp_path):
    """The checks above read what they should: a submodule imported from its package, and an import inside a
    function with its comment."""
    source = tmp_path / "example.py"
    source.write_text("from ferlib.champion import recipe, run\n\n\ndef f():\n"
                      "    from ferlib.models import builders  # lazy: imports Keras\n")
    found = imports_of(source)
    assert [(i.module, i.lazy) for i in found] == [("ferlib.champion.recipe", False), ("ferlib.champion.run", False),
                                                    ("ferlib.models.builders", True)]
    assert found[-1].comment == "lazy: imports Keras"
    assert "keras" in _top_level_libraries("ferlib.models.builders")
    assert not _top_level_libraries("ferlib.champion.recipe") & HEAVY_LIBRARIES


def _ferlib_names_used(source: str) -> list[tuple[str, str]]:
    """Return (module, name) for each `alias.name` the code uses on a ferlib module it imports, and each name it
    imports from one."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    modules: dict[str, str] = {}
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ferlib"):
            for alias in node.names:
                if (FERLIB.parent / (node.module + "." + alias.name).replace(".", "/")).with_suffix(".py").is_file():
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                else:
                    used.append((node.module, alias.name))
        elif isinstance(node, ast.Import):
            modules.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("ferlib")})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            used.append((modules[node.value.id], node.attr))
    return used


@pytest.mark.parametrize("notebook", sorted(p.name for p in (FERLIB.parent / "notebooks").glob("*.ipynb")))
def test_every_ferlib_name_a_notebook_uses_exists(notebook):
    # a function renamed or inlined in ferlib breaks a notebook only when it runs (the slow lane): catch it here
    import importlib
    import json

    cells = json.loads((FERLIB.parent / "notebooks" / notebook).read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    missing = [f"{module}.{name}" for module, name in _ferlib_names_used(source)
               if not hasattr(importlib.import_module(module), name)]
    assert not missing, f"{notebook} uses names ferlib no longer has: {missing}"


def test_the_notebook_name_check_sees_a_name_in_an_f_string():
    used = _ferlib_names_used('from ferlib.models import shipped\nx = f"{shipped.gone()}"\n')
    assert ("ferlib.models.shipped", "gone") in used
