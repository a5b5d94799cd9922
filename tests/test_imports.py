"""Import structure: loading a config and the sparse core import no Flower, the client imports no
server module, and no fedsparse modules import each other in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from fedsparse.fl.strategies import STRATEGIES
from fedsparse.fl.strategies.base import SparseFedAvg

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fedsparse"


def _run(code: str) -> None:
    """Run `code` in a fresh interpreter (nothing imported yet); its failure fails the test."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_config_and_sparse_core_import_no_flower() -> None:
    """Validating configs (every strategy, the model fit on the meta device), loading every
    strategy's client step and importing every module of the sparse core, the codecs, the methods'
    flwr-free side and the centralized config leave `flwr` unimported."""
    _run("""
        import importlib, pkgutil, sys
        import fedsparse.config, fedsparse.sparse
        assert not any(m.startswith("flwr") for m in sys.modules)
        from fedsparse.config import load_config
        load_config("cifar_noniid", [])
        from fedsparse.fl.strategies.registry import STRATEGIES
        for strategy in STRATEGIES.names():
            load_config("feddst_mnist", [f"strategy={strategy}", "codec=golomb", "logger=tensorboard"])
            STRATEGIES.get(strategy).client()
        for package in ("fedsparse.sparse", "fedsparse.comm", "fedsparse.methods"):
            for mod in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
                importlib.import_module(mod.name)
        from fedsparse.centralized import load_central_config
        load_central_config([])
        flower = sorted(m for m in sys.modules if m.startswith("flwr"))
        assert not flower, flower[:5]
    """)


def test_client_imports_no_server_module() -> None:
    """The ClientApp imports no strategy and no ServerApp. It reads the strategy registry's
    declarations (`masked_names` asks whether the strategy is sparse); they import no Flower."""
    _run("""
        import sys
        import fedsparse.fl.client_app
        server = sorted(m for m in sys.modules
                        if m.startswith(("fedsparse.fl.strategies.", "fedsparse.fl.server_app"))
                        and m != "fedsparse.fl.strategies.registry")
        assert not server, server
    """)


def test_every_strategy_entry_loads_its_class() -> None:
    for name in STRATEGIES:
        assert issubclass(STRATEGIES.get(name).load(), SparseFedAvg), name


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, inside functions too, but not under
    `if TYPE_CHECKING:` (those are for type checkers only and never run)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [node]
    if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
        return [n for child in node.orelse for n in _imports(child)]
    return [n for child in ast.iter_child_nodes(node) for n in _imports(child)]


def import_graph() -> dict[str, set[str]]:
    """fedsparse module -> the fedsparse modules it imports by name (`from a.b import c` counts
    a.b.c when c is a module, else a.b). The parents Python initialises on the way (importing
    a.b.c runs a/__init__ and a/b/__init__) are not edges: a package that imports its own
    submodules would otherwise be a circle with each of them."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                           for a in node.names)
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of `graph` as [a, b, ..., a], or None if it has none (iterative DFS)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    """No fedsparse modules import each other in a circle, counting the imports made inside
    functions (a lazy import hides a circle from Python, not from the design)."""
    graph = import_graph()
    assert "fedsparse.registries" in graph["fedsparse.config"]  # an import inside a function
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
