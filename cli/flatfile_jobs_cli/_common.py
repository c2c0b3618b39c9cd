"""What every command shares: the one CLI error, finding the checkout, scoped environment, terminal styling."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

__all__ = ["ROOT_ENV", "CliError", "Style", "find_root", "scoped_env"]

ROOT_ENV = "FLATFILE_JOBS_ROOT"
_MARKER = Path("functions/receiver/app.py")


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status ``code`` (2: usage or configuration)."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def find_root(start: Path | None = None) -> Path:
    """The flatfile-jobs checkout the functions are loaded from.

    ``$FLATFILE_JOBS_ROOT``, else the first of ``start`` (the working directory) and its parents holding
    ``functions/receiver/app.py``, else the checkout this package was installed from (editable install).

    Raises:
        CliError: No checkout found.
    """
    configured = os.environ.get(ROOT_ENV)
    if configured:
        root = Path(configured).expanduser().resolve()
        if not (root / _MARKER).is_file():
            raise CliError(f"{ROOT_ENV}={configured} has no {_MARKER}: point it at a flatfile-jobs checkout")
        return root
    here = (start or Path.cwd()).resolve()
    installed = Path(__file__).resolve().parents[2]
    for candidate in (here, *here.parents, installed):
        if (candidate / _MARKER).is_file():
            return candidate
    raise CliError(
        f"cannot find {_MARKER}: run flatfile-jobs inside a flatfile-jobs checkout (or set {ROOT_ENV})"
    )


@contextlib.contextmanager
def scoped_env(values: Mapping[str, str | None], *, override: bool = True) -> Iterator[None]:
    """Set (or with ``None`` remove) environment variables, restoring the previous values on exit.

    Args:
        values: Names and values.
        override: ``False`` keeps values the user already set (defaults only).
    """
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if not override and saved[name] is not None:
                continue
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class Style:
    """ANSI colours when writing to a terminal (and ``NO_COLOR`` is unset); plain text otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.color = self.tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def bold(self, text: str) -> str:
        """Bold text."""
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        """Faint text."""
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        """Green text (success)."""
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        """Red text (failure)."""
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        """Yellow text (in progress, warnings)."""
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        """Cyan text (addresses, commands)."""
        return self._wrap("36", text)
