"""The test kit's modules import each other without cycles, and its HTTP server knows nothing of the fake."""

from __future__ import annotations

import ast
from pathlib import Path

import flatfile_jobs_testing

KIT = Path(flatfile_jobs_testing.__file__).parent


def kit_imports(folder: Path) -> dict[str, set[str]]:
    """Each module's imports of sibling modules, ``TYPE_CHECKING`` ones included (a type-only cycle is one too)."""
    package = folder.name
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        siblings: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                siblings |= {alias.name for alias in node.names if alias.name.startswith("_")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{package}._"):
                siblings.add(str(node.module).split(".")[1])
        graph[path.stem] = siblings
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path that closes it."""
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, set())):
            if imported in path:
                found.append([*path[path.index(imported) :], imported])
            else:
                visit(imported, [*path, imported])

    for module in graph:
        visit(module, [module])
    return found


def test_the_kit_has_no_import_cycle() -> None:
    """No module of the kit imports, even for types only, a module that imports it back."""
    graph = kit_imports(KIT)
    assert {"_fake", "_server", "_store", "_parts"} <= set(graph)
    assert cycles(graph) == []


def test_the_http_server_imports_no_other_kit_module() -> None:
    """_server serves any responder: it reaches the fake only through FakeFlatfile.respond, handed to it."""
    assert kit_imports(KIT)["_server"] == set()


def test_the_cycle_check_finds_a_type_only_cycle(tmp_path: Path) -> None:
    """The check is not vacuous: a TYPE_CHECKING import back is reported (the old _fake <-> _server shape)."""
    kit = tmp_path / "flatfile_jobs_testing"
    kit.mkdir()
    (kit / "_fake.py").write_text("from flatfile_jobs_testing._server import FakeHTTPServer\n")
    (kit / "_server.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flatfile_jobs_testing._fake import F\n"
    )
    assert ["_fake", "_server", "_fake"] in cycles(kit_imports(kit))
