"""The package's modules import without a cycle (structure issue 13 §5).

Two checks: the graph of the package's own imports (every ``from . import``,
also those under ``if TYPE_CHECKING:`` that only a type checker follows) has
no cycle; and each module imports first in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import imbi_worker_client

PACKAGE_DIR = Path(imbi_worker_client.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")


def _local_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "imbi_worker_client."
        ):
            out.add(node.module.split(".")[1])
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        (
            {"errors": {"publisher"}, "publisher": {"envelope"}, "envelope": {"errors"}},
            ["envelope", "errors", "publisher", "envelope"],
        ),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert _find_cycle(graph) == cycle


def test_module_graph_has_no_cycle() -> None:
    graph = {m: _local_imports(m) for m in MODULES}
    assert graph["errors"] == {"results"}
    assert graph["results"] == set()
    assert _find_cycle(graph) is None


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    code = f"import importlib; importlib.import_module('imbi_worker_client.{module}')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_public_import_paths() -> None:
    from imbi_worker_client import PublishResult, RuleResult
    from imbi_worker_client.publisher import PublishResult as P2
    from imbi_worker_client.publisher import RuleResult as R2

    assert (PublishResult, RuleResult) == (P2, R2)
