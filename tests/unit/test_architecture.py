"""The layer's shape: the library knows nothing of Lambda, SQS or API Gateway, and no modules import each other.

Imports are read from the source (every ``import`` anywhere in a module: at the top, under ``TYPE_CHECKING``,
inside a function), so a cycle hidden behind a lazy or type-only import counts as one.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import flatfile_jobs
import flatfile_stack

# Top-level packages that belong to AWS's runtime or to the stack, never to the library.
_AWS_OR_STACK = frozenset(
    {
        "aws_durable_execution_sdk_python",
        "aws_lambda_powertools",
        "boto3",
        "botocore",
        "flatfile_stack",
        "moto",
    }
)
# Words that name SQS, Lambda's handler context or API Gateway in source text (comments and docstrings too).
_AWS_WORDS = re.compile(
    r"\bsqs\b|lambda_context|LambdaContext|get_remaining_time_in_millis|api[ _-]?gateway|"
    r"MessageAttributes|receiptHandle|isBase64Encoded",
    re.IGNORECASE,
)


def _modules(package: object) -> Iterator[tuple[str, Path]]:
    """``(dotted name, path)`` of every module of ``package``."""
    root = Path(str(getattr(package, "__file__", ""))).parent
    name = str(getattr(package, "__name__", ""))
    for path in sorted(root.rglob("*.py")):
        parts = [name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``module`` imports anywhere in its source (a name in a package counts as the package)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
    return found


def _graph() -> dict[str, set[str]]:
    """The import graph of the library and the stack's adapters (edges to their own modules only)."""
    paths = dict(_modules(flatfile_jobs)) | dict(_modules(flatfile_stack))
    known = set(paths)
    return {name: _imported(name, path, known) & known - {name} for name, path in paths.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for other in graph.get(todo.pop(), set()) - seen:
            seen.add(other)
            todo.append(other)
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other round a loop, each sorted."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {
        frozenset({node} | {other for other in reach[node] if node in reach[other]})
        for node in graph
        if node in reach[node]
    }
    return sorted(sorted(group) for group in groups)


def test_the_import_graph_is_read_from_every_module() -> None:
    """The scan sees the library's and the stack's modules and their imports (a scan that saw nothing passes nothing)."""
    graph = _graph()
    assert {
        "flatfile_jobs",
        "flatfile_jobs._lifecycle",
        "flatfile_jobs._ticks",
        "flatfile_stack.worker",
    } <= set(graph)
    assert "flatfile_jobs._ticks" in graph["flatfile_jobs._lifecycle"]
    assert not any(name.startswith("flatfile_jobs.testing") for name in graph)


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import() -> None:
    """A two-module loop and a three-module loop are both reported; a chain is not."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles_among_the_library_and_the_stack() -> None:
    """No two modules of flatfile_jobs and flatfile_stack import each other, directly or round a loop."""
    graph = _graph()
    cycles = _cycles(graph)
    assert cycles == [], "\n".join(
        " ⇄ ".join(cycle) + ": " + "; ".join(f"{m} → {sorted(graph[m] & set(cycle))}" for m in cycle)
        for cycle in cycles
    )


def test_the_library_imports_nothing_of_aws_or_the_stack() -> None:
    """No flatfile_jobs module imports boto3, botocore, Powertools, the durable SDK, moto or flatfile_stack."""
    known = {name for name, _ in _modules(flatfile_jobs)}
    offenders = {
        name: sorted(
            top for top in {m.split(".")[0] for m in _imported(name, path, known)} if top in _AWS_OR_STACK
        )
        for name, path in _modules(flatfile_jobs)
    }
    assert {name: tops for name, tops in offenders.items() if tops} == {}


def test_the_library_source_never_names_sqs_lambda_context_or_api_gateway() -> None:
    """No flatfile_jobs source (code, comments, docstrings) speaks of SQS, Lambda's context or API Gateway."""
    hits = [
        f"{path.name}:{number}: {line.strip()}"
        for _, path in _modules(flatfile_jobs)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _AWS_WORDS.search(line)
    ]
    assert hits == []


def test_importing_every_library_module_loads_nothing_of_aws_or_the_stack() -> None:
    """In a fresh interpreter, importing every flatfile_jobs module loads no AWS package and no flatfile_stack."""
    names = [name for name, _ in _modules(flatfile_jobs)]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"loaded = sorted(set({sorted(_AWS_OR_STACK)!r}) & {{m.split('.')[0] for m in sys.modules}})\n"
        "assert not loaded, loaded\n"
        f"assert len({names!r}) > 20\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
