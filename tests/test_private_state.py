"""The tests build what they need: none writes, clears or patches a private global of a module.

A test that resets ``some_module._cache`` by hand depends on hidden state the code should not have, and breaks
silently when that state is renamed. This scans every test file's syntax tree for such writes.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# Methods that change the object they are called on (a private dict, list, set or functools cache).
MUTATORS = frozenset(
    {
        "add",
        "append",
        "cache_clear",
        "clear",
        "discard",
        "extend",
        "insert",
        "pop",
        "remove",
        "setdefault",
        "update",
    }
)
PATCHERS = frozenset({"setattr", "delattr", "setitem", "delitem", "object"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


class _Finder(ast.NodeVisitor):
    """Collects ``line: text`` for each write to a private module global in one file."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}  # local name -> module it is bound to
        self.found: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.modules[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if _is_module(dotted):
                    self.modules[alias.asname or alias.name] = dotted

    def _module_of(self, node: ast.expr) -> str | None:
        """The module ``node`` names (``mod``, ``mod.sub``), ``None`` when it names something else."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self._module_of(node.value)
            dotted = f"{parent}.{node.attr}" if parent else None
            return dotted if dotted and _is_module(dotted) else None
        return None

    def _private_global(self, node: ast.expr) -> bool:
        """``module._name`` or ``module._name[…]``."""
        if isinstance(node, ast.Subscript):
            node = node.value
        return (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and self._module_of(node.value) is not None
        )

    def _flag(self, node: ast.AST) -> None:
        self.found.append(f"{getattr(node, 'lineno', '?')}: {ast.unparse(node)}")

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(self._private_global(target) for target in node.targets):
            self._flag(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self._private_global(node.target):
            self._flag(node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        if any(self._private_global(target) for target in node.targets):
            self._flag(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            if (func.attr in MUTATORS and self._private_global(func.value)) or (
                func.attr in PATCHERS and self._patches_private(node)
            ):
                self._flag(node)
        elif isinstance(func, ast.Name) and func.id == "patch" and self._patches_private(node):
            self._flag(node)
        self.generic_visit(node)

    def _patches_private(self, node: ast.Call) -> bool:
        """``setattr(module, "_name", …)``, ``setattr("pkg.mod._name", …)``, ``patch("pkg.mod._name")``."""
        args = node.args
        if len(args) >= 2 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
            return _private(args[1].value) and self._module_of(args[0]) is not None
        if (
            args
            and isinstance(args[0], ast.Constant)
            and isinstance(args[0].value, str)
            and "." in args[0].value
        ):
            owner, _, name = args[0].value.rpartition(".")
            return _private(name) and _is_module(owner)
        return False


def private_state_writes(source: str) -> list[str]:
    """Each write to a private module global in ``source``, as ``line: code``."""
    finder = _Finder()
    finder.visit(ast.parse(source))
    return finder.found


def test_the_scan_finds_each_kind_of_write() -> None:
    """The scanner flags assignment, mutation, cache clearing and monkeypatching of ``module._name``."""
    source = """
import flatfile_stack.worker
from flatfile_jobs import _listener
from flatfile_stack import runtime as rt

_listener._thing = 1
_listener._thing["k"] = 2
_listener._thing.clear()
flatfile_stack.worker._idempotent.cache_clear()
monkeypatch.setattr(rt, "_handed_in", [])
monkeypatch.setattr("flatfile_stack.runtime._handed_in", [])
rt.use_runtime(None)
_listener.public = 1
settings._private = 3
"""
    assert [line.split(":")[0] for line in private_state_writes(source)] == ["6", "7", "8", "9", "10", "11"]


def test_no_test_resets_private_module_state() -> None:
    """No test file writes, clears or patches a module's private global (build what you need instead)."""
    found = {
        str(path.relative_to(TESTS)): writes
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != Path(__file__).name
        if (writes := private_state_writes(path.read_text()))
    }
    assert found == {}
