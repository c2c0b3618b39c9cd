"""The README's "Test your handler" example is a test file that passes, run as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first ```python block of the README's "Test your handler" section."""
    section = README.read_text(encoding="utf-8").split("## Test your handler", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```", section, flags=re.M | re.S)
    assert match is not None, "the section has no python example"
    return match.group(1)


def test_the_readme_test_example_passes_under_pytest(tmp_path: Path) -> None:
    """Written to a file outside the repo and run with pytest: both its tests pass (they check real requests)."""
    (tmp_path / "test_space_configure.py").write_text(readme_example(), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("POWERTOOLS_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_space_configure.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_readme_test_example_fails_when_the_handler_misbehaves(tmp_path: Path) -> None:
    """The example's assertions can fail: a handler that skips its last tick makes pytest report a failure."""
    broken = readme_example().replace('    tick(100, "Configuration complete.")\n', "", 1)
    assert broken != readme_example()
    (tmp_path / "test_space_configure.py").write_text(broken, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_space_configure.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "1 failed, 1 passed" in done.stdout


def test_the_readme_test_example_type_checks_strictly(tmp_path: Path) -> None:
    """The example passes mypy --strict with the kit's and the library's published types (no Any, no ignores)."""
    example = tmp_path / "test_space_configure.py"
    example.write_text(readme_example(), encoding="utf-8")
    assert "type: ignore" not in example.read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
