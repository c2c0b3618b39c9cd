"""The layer's pinned runtime dependencies are the package's: what the tests run is what Lambda gets."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layer_pins() -> set[str]:
    lines = (ROOT / "layers/shared/requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def test_layer_requirements_equal_the_project_dependencies() -> None:
    """pyproject.toml's dependencies and layers/shared/requirements.txt name the same pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) == _layer_pins()


def test_every_layer_dependency_is_pinned_exactly() -> None:
    """Each runtime dependency is pinned with == (a deploy never picks up a surprise release)."""
    pins = _layer_pins()
    assert pins
    assert all("==" in pin and not any(op in pin for op in (">", "<", "~", "*")) for pin in pins)
