"""The layering rule, read from the source with ast (every import statement counts: module level,
inside functions, under `if TYPE_CHECKING`):

- imports point one way, app/ -> db/ -> backend/: backend/ imports nothing from db/ or app/, nor
  SQLAlchemy, Alembic, Huey, Redis or Streamlit, except the command line's composition root
  backend/__main__.py; db/ imports nothing from app/ or Streamlit;
- in app/, only the facade (app/store.py) and the report command (app/cli.py) reach db/: the
  pages in app/views/ and the other modules go through the facade;
- no import circles among the modules of backend/, db/ and app/.

Importing a submodule also runs its packages' __init__ files; those implied edges are not
counted (package __init__ files here import nothing of their own)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("backend", "db", "app")
OUTSIDE_BACKEND = ("sqlalchemy", "alembic", "huey", "redis", "streamlit")
COMPOSITION_ROOT = "backend.__main__"
APP_DB_DOORS = {"app.store", "app.cli"}


def modules(root: Path, packages=LAYERS) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imported_names(name: str, path: Path) -> set[str]:
    """Every name an import statement of the module names: "a.b" for `import a.b`, "a.b" and
    "a.b.c" for `from a.b import c` (c may be a module), relative imports resolved."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def import_graph(root: Path, packages=LAYERS) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between the packages' own modules, every top-level name each module imports)."""
    mods = modules(root, packages)
    edges, tops = {}, {}
    for name, path in mods.items():
        names = imported_names(name, path)
        edges[name] = {n for n in names if n in mods and n != name}
        tops[name] = {n.split(".")[0] for n in names if n}
    return edges, tops


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def violations(edges: dict[str, set[str]], tops: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod in sorted(edges):
        layer = mod.split(".")[0]
        if layer == "backend" and mod != COMPOSITION_ROOT:
            bad += [f"{mod} imports {t}" for t in sorted(tops[mod]) if t in ("db", "app")]
            bad += [f"{mod} imports {t}" for t in sorted(tops[mod]) if t in OUTSIDE_BACKEND]
        if layer == "db":
            bad += [f"{mod} imports {t}" for t in sorted(tops[mod]) if t in ("app", "streamlit")]
        if layer == "app" and mod not in APP_DB_DOORS:
            bad += [f"{mod} imports db (use app.store)" for t in tops[mod] if t == "db"]
            bad += [f"{mod} imports sqlalchemy" for t in tops[mod] if t == "sqlalchemy"]
    return bad


def test_imports_point_one_way():
    assert violations(*import_graph(REPO)) == []


def test_no_import_circles():
    edges, _ = import_graph(REPO)
    assert len(edges) > 50  # the whole tree was read
    assert cycles(edges) == []


def test_the_composition_root_assembles_every_layers_commands():
    edges, _ = import_graph(REPO)
    assert {"backend.cli", "db.cli", "app.cli"} <= edges[COMPOSITION_ROOT]


# ---- the checker itself, on a small tree with each kind of fault ------------------------------


@pytest.fixture
def tree(tmp_path):
    def write(rel: str, text: str = "") -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for pkg in LAYERS:
        write(f"{pkg}/__init__.py")
    return tmp_path, write


def test_the_checker_sees_function_level_and_relative_imports(tree):
    root, write = tree
    write("backend/a.py", "def f():\n    from db import api\n    import streamlit\n")
    write("db/api.py", "from . import models\n")
    write("db/models.py", "import sqlalchemy\n")
    write("app/views/page.py", "from db.api import submit\n")
    write("app/store.py", "from db import api\n")
    edges, tops = import_graph(root)
    assert edges["db.api"] == {"db", "db.models"}
    assert violations(edges, tops) == [
        "app.views.page imports db (use app.store)",
        "backend.a imports db",
        "backend.a imports streamlit",
    ]


def test_the_checker_finds_circles_through_function_level_imports(tree):
    root, write = tree
    write("backend/x.py", "from backend.y import g\n")
    write("backend/y.py", "def g():\n    from backend import x\n")
    write("backend/z.py", "from backend import x\n")
    edges, _ = import_graph(root)
    assert cycles(edges) == [["backend.x", "backend.y"]]
