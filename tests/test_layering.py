"""Layering of ``kanpose_cli.core``: imports run downward only.

Every module under ``kanpose_cli/core`` is parsed with ``ast`` (nothing is imported), and every import counts, also
the lazy ones inside functions: a lazy import still ties the lower layer to the upper one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "kanpose_cli" / "core"

# (modules, may not import, why). A name covers the module or package and everything below it.
RULES = [
    ("kanpose_cli.core", "kanpose_cli.cli", "core never depends on the Typer commands"),
    ("kanpose_cli.core.models", "kanpose_cli.core.engine", "models sit below engine"),
    ("kanpose_cli.core.codecs", "kanpose_cli.core.engine", "codecs sit below engine"),
    ("kanpose_cli.core.keypoints", "kanpose_cli.core.engine", "keypoint metadata is the bottom"),
    ("kanpose_cli.core.results", "kanpose_cli.core.engine", "results sit below engine"),
    ("kanpose_cli.core.data", "kanpose_cli.core.engine", "data sits below engine"),
    ("kanpose_cli.core.detect", "kanpose_cli.core.engine", "detectors sit below engine"),
    ("kanpose_cli.core.results", "kanpose_cli.core.data", "data (writers, drawing) uses results, not the reverse"),
    ("kanpose_cli.core.keypoints", "kanpose_cli.core", "keypoint metadata is the bottom: no kanpose imports"),
    ("kanpose_cli.core.paths", "kanpose_cli.core", "paths is the bottom: no kanpose imports"),
    ("kanpose_cli.core.errors", "kanpose_cli.core", "errors is the bottom: no kanpose imports"),
    ("kanpose_cli.core.text", "kanpose_cli.core", "message wording (plurals, AP) is the bottom: no kanpose imports"),
    ("kanpose_cli.core.models", "kanpose_cli.core.weights",
     "models declare published weights as data; reading, converting and downloading files is the weights package's "
     "job, which sits above models"),
    ("kanpose_cli.core.codecs", "kanpose_cli.core.weights", "codecs sit below the weights package"),
    ("kanpose_cli.core.weights", "kanpose_cli.core.engine", "the weights package sits below engine"),
    ("kanpose_cli.core.weights", "kanpose_cli.core.data", "model files need no datasets, readers or writers"),
    ("kanpose_cli.core.weights", "kanpose_cli.core.detect", "model files need no detectors"),
    ("kanpose_cli.core.track", "kanpose_cli.core.engine", "tracking and smoothing sit below engine (the estimator)"),
    ("kanpose_cli.core.track", "kanpose_cli.core.data", "tracks need no readers or writers"),
    ("kanpose_cli.core.detect", "kanpose_cli.core.track", "detectors and trackers are glue below the track sessions"),
    ("kanpose_cli.core.results", "kanpose_cli.core.detect", "results sit below the detectors that produce them"),
]

# The command layer: options and printing only. Box sources, the pipeline and the trackers are built in one place
# (``core.engine.estimator.PoseEstimator``), never by a command.
CLI_RULES = [
    ("kanpose_cli.cli", "kanpose_cli.core.detect", "box sources and detectors are built by the estimator"),
    ("kanpose_cli.cli", "kanpose_cli.core.engine.pipeline", "the crop -> network -> uncrop loop is the estimator's"),
    ("kanpose_cli.cli", "kanpose_cli.core.track", "trackers are built by the estimator"),
]

# (module, the only kanpose modules it may import, why)
ONLY = [
    ("kanpose_cli.core.registry", {"kanpose_cli.core.errors"},
     "the generic registry (models, codecs, losses, converters) sits at the bottom, next to errors"),
    ("kanpose_cli.core.draw", set(), "drawing reads results by duck typing, so results.plot() can use it"),
]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every ``kanpose_cli`` name imported anywhere in ``source`` (top level or inside functions).

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative imports are resolved
    against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if _under(name, "kanpose_cli")}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def core_imports() -> dict[str, set[str]]:
    """``{module: imported kanpose_cli modules}`` for every module under ``kanpose_cli/core``."""
    graph = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = ("kanpose_cli", "core") + path.relative_to(CORE).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        names = imported_modules(path.read_text(encoding="utf-8"), module, is_package)
        graph[module] = {name for name in names if _is_module(name)}  # drop ``module.function`` names
    return graph


def cli_imports() -> dict[str, set[str]]:
    """``{module: imported kanpose_cli modules}`` for every module under ``kanpose_cli/cli``."""
    graph = {}
    for path in sorted((ROOT / "kanpose_cli" / "cli").rglob("*.py")):
        parts = ("kanpose_cli", "cli") + path.relative_to(ROOT / "kanpose_cli" / "cli").with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        names = imported_modules(path.read_text(encoding="utf-8"), module, is_package)
        graph[module] = {name for name in names if _is_module(name)}
    return graph


def test_commands_build_no_inference_themselves():
    graph = cli_imports()
    assert "kanpose_cli.cli.predict" in graph
    bad = [f"{module} imports {name} ({why})"
           for module, names in graph.items()
           for source, target, why in CLI_RULES if _under(module, source)
           for name in sorted(names) if _under(name, target)]
    assert not bad, "commands reaching past the estimator:\n" + "\n".join(bad)


def test_package_root_imports_nothing_eagerly():
    """``kanpose_cli/__init__.py`` exports the API lazily (module ``__getattr__``): no import at the top level."""
    tree = ast.parse((ROOT / "kanpose_cli" / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" or
               isinstance(n, ast.Import) and [a.name for a in n.names] == ["importlib"] for n in top), top


def _component(name: str) -> str | None:
    """``core.<subpackage or top-level module>`` or ``cli``; None for the package roots themselves."""
    parts = name.split(".")
    if parts[:2] == ["kanpose_cli", "cli"]:
        return "cli"
    if parts[:2] == ["kanpose_cli", "core"] and len(parts) > 2:
        return f"core.{parts[2]}"
    return None


def test_import_parser_sees_lazy_relative_and_submodule_imports():
    source = (
        "import os\n"
        "from kanpose_cli.core.errors import UsageError\n"
        "from kanpose_cli.core import engine\n"
        "from ..results import PoseResult\n"
        "def f():\n"
        "    import kanpose_cli.cli.app\n"
    )
    found = imported_modules(source, "kanpose_cli.core.models.info", is_package=False)
    assert {"kanpose_cli.core.errors", "kanpose_cli.core.engine", "kanpose_cli.core.results",
            "kanpose_cli.cli.app"} <= found
    assert "os" not in found


def test_core_has_modules_to_check():
    graph = core_imports()
    for module in ("kanpose_cli.core.keypoints", "kanpose_cli.core.results", "kanpose_cli.core.models.registry",
                   "kanpose_cli.core.weights.loader", "kanpose_cli.core.weights.hub", "kanpose_cli.core.registry",
                   "kanpose_cli.core.data.writers"):
        assert module in graph


def test_no_upward_imports():
    bad = [f"{module} imports {name} ({why})"
           for module, names in core_imports().items()
           for source, target, why in RULES if _under(module, source)
           for name in sorted(names) if _under(name, target)]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_bottom_modules_import_only_what_they_may():
    graph = core_imports()
    bad = [f"{module} imports {name} ({why})"
           for source, allowed, why in ONLY
           for module, names in graph.items() if _under(module, source)
           for name in sorted(names) if not any(_under(name, a) for a in allowed)]
    assert not bad, "imports beyond the allowed ones:\n" + "\n".join(bad)


def test_core_components_have_no_import_cycle():
    """Subpackages and top-level modules of core (models, data, engine, results.py, ...) form a DAG."""
    edges: dict[str, set[str]] = {}
    for module, names in core_imports().items():
        src = _component(module)
        if src is None:
            continue
        for name in names:
            dst = _component(name)
            if dst is not None and dst != src:
                edges.setdefault(src, set()).add(dst)

    state: dict[str, str] = {}  # "open" while on the DFS stack, "done" after

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start, [start])
            assert cycle is None, "import cycle between core components: " + " -> ".join(cycle)
