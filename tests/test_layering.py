"""Layering of ``kanpose_cli``: imports run downward only.

Every module under ``kanpose_cli/core`` and ``kanpose_cli/cli`` is parsed with ``ast`` (nothing is imported), and every
import counts, also the lazy ones inside functions: a lazy import still ties the lower layer to the upper one.

Components are the command layer ``cli`` and each subpackage or top-level module of ``core`` (``core.inference``,
``core.evaluation``, ``core.training``, ``core.models``, ``core.results`` …). The task packages run one way:

    cli -> tasks / training / benchmark -> evaluation -> inference -> export
        -> models / weights / data / detect / track -> codecs / keypoints / results
        (+ the bottom modules errors, paths, io, registry, device, parallel, logs, draw, protocol, config_io)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "kanpose_cli" / "core"

# The task packages of core, top to bottom. A package may import only packages of a lower row (and everything below
# the last row); it may import neither a sibling in its own row nor anything above.
TASK_LAYERS = [
    ("kanpose_cli.core.tasks", "kanpose_cli.core.training", "kanpose_cli.core.benchmark"),
    ("kanpose_cli.core.evaluation",),
    ("kanpose_cli.core.inference",),
    ("kanpose_cli.core.export",),
]
# The packages below every task package (they may import none of them).
BELOW_TASKS = ("models", "weights", "data", "detect", "track", "codecs", "keypoints", "results", "errors", "paths",
               "io", "registry", "device", "parallel", "logs", "draw", "recipes", "text", "protocol", "config_io")


def _task_rules() -> list[tuple[str, str, str]]:
    rules = []
    for i, row in enumerate(TASK_LAYERS):
        for source in row:
            for j, other_row in enumerate(TASK_LAYERS[: i + 1]):
                for target in other_row:
                    if target != source:
                        where = "a sibling" if j == i else "above it"
                        rules.append((source, target, f"{target} is {where}: task packages import downward only"))
    for name in BELOW_TASKS:
        for row in TASK_LAYERS:
            for target in row:
                rules.append((f"kanpose_cli.core.{name}", target, f"core.{name} sits below the task packages"))
    return rules


# (modules, may not import, why). A name covers the module or package and everything below it.
RULES = _task_rules() + [
    ("kanpose_cli.core", "kanpose_cli.cli", "core never depends on the Typer commands"),
    ("kanpose_cli.core.results", "kanpose_cli.core.data", "data (writers, drawing) uses results, not the reverse"),
    ("kanpose_cli.core.paths", "kanpose_cli.core", "paths is the bottom: no kanpose imports"),
    ("kanpose_cli.core.errors", "kanpose_cli.core", "errors is the bottom: no kanpose imports"),
    ("kanpose_cli.core.text", "kanpose_cli.core", "message wording (plurals, AP) is the bottom: no kanpose imports"),
    ("kanpose_cli.core.protocol", "kanpose_cli.core", "the protocol constants are the bottom: no kanpose imports"),
    ("kanpose_cli.core.models", "kanpose_cli.core.weights",
     "models declare published weights as data; reading, converting and downloading files is the weights package's "
     "job, which sits above models"),
    ("kanpose_cli.core.codecs", "kanpose_cli.core.weights", "codecs sit below the weights package"),
    ("kanpose_cli.core.weights", "kanpose_cli.core.data", "model files need no datasets, readers or writers"),
    ("kanpose_cli.core.weights", "kanpose_cli.core.detect", "model files need no detectors"),
    ("kanpose_cli.core.track", "kanpose_cli.core.data", "tracks need no readers or writers"),
    ("kanpose_cli.core.detect", "kanpose_cli.core.track", "detectors and trackers are glue below the track sessions"),
    ("kanpose_cli.core.results", "kanpose_cli.core.detect", "results sit below the detectors that produce them"),
]

# The command layer: options and printing only. Box sources, the pipeline and the trackers are built in one place
# (``core.inference.estimator.PoseEstimator``), never by a command.
CLI_RULES = [
    ("kanpose_cli.cli", "kanpose_cli.core.detect", "box sources and detectors are built by the estimator"),
    ("kanpose_cli.cli", "kanpose_cli.core.inference.pipeline", "the crop -> network -> uncrop loop is the estimator's"),
    ("kanpose_cli.cli", "kanpose_cli.core.track", "trackers are built by the estimator"),
]

# (module, the only kanpose modules it may import, why)
ONLY = [
    ("kanpose_cli.core.registry", {"kanpose_cli.core.errors"},
     "the generic registry (models, codecs, losses, converters) sits at the bottom, next to errors"),
    ("kanpose_cli.core.draw", set(), "drawing reads results by duck typing, so results.plot() can use it"),
    ("kanpose_cli.core.keypoints", {"kanpose_cli.core.errors"},
     "keypoint-set metadata is the bottom (models, codecs, results, drawing use it), next to errors for the one-line "
     "messages about users' keypoint-set files"),
    ("kanpose_cli.core.config_io", {"kanpose_cli.core.errors", "kanpose_cli.core.registry"},
     "the dict -> dataclass loader (training config, model configs) sits at the bottom, next to errors and the "
     "registry's name suggestions"),
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
        "from kanpose_cli.core import inference\n"
        "from ..results import PoseResult\n"
        "def f():\n"
        "    import kanpose_cli.cli.app\n"
    )
    found = imported_modules(source, "kanpose_cli.core.models.info", is_package=False)
    assert {"kanpose_cli.core.errors", "kanpose_cli.core.inference", "kanpose_cli.core.results",
            "kanpose_cli.cli.app"} <= found
    assert "os" not in found


def test_core_has_modules_to_check():
    graph = core_imports()
    for module in ("kanpose_cli.core.keypoints", "kanpose_cli.core.results", "kanpose_cli.core.models.registry",
                   "kanpose_cli.core.weights.loader", "kanpose_cli.core.weights.hub", "kanpose_cli.core.registry",
                   "kanpose_cli.core.data.writers"):
        assert module in graph


def _violations(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} imports {name} ({why})"
            for module, names in graph.items()
            for source, target, why in RULES if _under(module, source)
            for name in sorted(names) if _under(name, target)]


def test_no_upward_imports():
    bad = _violations(core_imports())
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_rules_catch_a_back_edge():
    """A lazy import of a higher task package from a lower one (the kind this layout removed) is reported."""
    back_edges = {"kanpose_cli.core.inference.backend": {"kanpose_cli.core.evaluation.evaluator"},
                  "kanpose_cli.core.training.loop": {"kanpose_cli.core.tasks.distributed"},
                  "kanpose_cli.core.export.exporter": {"kanpose_cli.core.inference.pipeline"},
                  "kanpose_cli.core.models.registry": {"kanpose_cli.core.export.exporter"}}
    bad = _violations(back_edges)
    assert len(bad) == 4, bad
    assert _violations({"kanpose_cli.core.tasks.predictor": {"kanpose_cli.core.inference.estimator"}}) == []


def test_every_core_component_has_a_place_in_the_layers():
    """A new subpackage or top-level module of core must be placed in ``TASK_LAYERS`` or ``BELOW_TASKS``."""
    placed = {name for row in TASK_LAYERS for name in row} | {f"kanpose_cli.core.{n}" for n in BELOW_TASKS}
    components = {f"kanpose_cli.{_component(m)}" for m in core_imports() if _component(m) is not None}
    assert components - placed == set(), "not placed in the layers: " + ", ".join(sorted(components - placed))


def test_bottom_modules_import_only_what_they_may():
    graph = core_imports()
    bad = [f"{module} imports {name} ({why})"
           for source, allowed, why in ONLY
           for module, names in graph.items() if _under(module, source)
           for name in sorted(names) if not any(_under(name, a) for a in allowed)]
    assert not bad, "imports beyond the allowed ones:\n" + "\n".join(bad)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the directed graph ``edges`` (``[a, b, …, a]``), or None for a DAG."""
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
            if cycle:
                return cycle
    return None


def component_graph() -> dict[str, set[str]]:
    """Package-level import graph: ``cli`` and every subpackage / top-level module of core, lazy imports included."""
    edges: dict[str, set[str]] = {}
    for module, names in {**core_imports(), **cli_imports()}.items():
        src = _component(module)
        if src is None:
            continue
        for name in names:
            dst = _component(name)
            if dst is not None and dst != src:
                edges.setdefault(src, set()).add(dst)
    return edges


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_components_have_no_import_cycle():
    """cli and the subpackages / top-level modules of core (inference, evaluation, training, models, results.py, …)
    form a DAG."""
    edges = component_graph()
    assert {"core.inference", "core.evaluation", "core.training", "core.export", "core.benchmark",
            "core.tasks"} <= set(edges)
    assert "core.inference" in edges["core.evaluation"]  # the graph sees lazy imports (evaluator -> estimator)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between components: " + " -> ".join(cycle)


def test_modules_have_no_import_cycle():
    """No circle between single modules either (a package ``__init__`` counts as the module of its package)."""
    graph = {**core_imports(), **cli_imports()}
    edges = {module: {n for n in names if n in graph and n != module} for module, names in graph.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle)


def _py_lines(path: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in path.rglob("*.py"))


def test_no_core_folder_holds_more_than_a_quarter_of_the_package():
    total = _py_lines(ROOT / "kanpose_cli")
    shares = {d.name: _py_lines(d) / total for d in sorted(CORE.iterdir()) if d.is_dir() and any(d.rglob("*.py"))}
    assert "inference" in shares and total > 1000
    big = {name: f"{share:.0%}" for name, share in shares.items() if share > 0.25}
    assert not big, f"core folders over 25 % of the {total} lines of kanpose_cli/*.py: {big}"
