"""Reload the app's job handlers (the ``jobs`` package) while a local run goes on: between jobs, whole or not.

The package's files are polled for changes (modification time and size); a change is picked up by a
watcher thread or by the next job, whichever comes first. The package is imported afresh while no job runs
(jobs wait for a reload to finish, a reload waits for running jobs), so no job ever sees half of the old
code and half of the new. An import that fails leaves the previous handlers in place and prints why.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TextIO

from flatfile_jobs import FlatfileListener
from flatfile_jobs._table import load_plugins

from ._common import Style

__all__ = ["HandlerReloader"]

_Stamp = dict[str, tuple[int, int]]


class HandlerReloader:
    """Watch the handlers' package and swap in a fresh import of it between jobs.

    Args:
        out: Where to say that the handlers were reloaded (or why they were not).
        on_reload: Called with the new package's ``listener`` (under the reload lock, no job running).
        package: The package holding ``listener`` (the app's ``jobs``).
        interval: Seconds between checks of the files by the watcher thread.
    """

    def __init__(
        self,
        out: TextIO,
        on_reload: Callable[[FlatfileListener], None],
        *,
        package: str = "flatfile_app_jobs",
        interval: float = 0.5,
    ) -> None:
        self.out = out
        self.style = Style(out)
        self.on_reload = on_reload
        self.package = package
        self.interval = interval
        module = importlib.import_module(package)
        listener = getattr(module, "listener", None)
        if isinstance(listener, FlatfileListener):
            load_plugins(listener)  # the handlers as they are now; later edits come in by a reload
        self.folder = Path(str(module.__file__)).resolve().parent
        self.reloads = 0
        self._stamp = self._scan()
        self._failed: _Stamp | None = None
        self._reload_lock = threading.Lock()
        self._state = threading.Condition()
        self._running = 0
        self._reloading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HandlerReloader:
        self._thread = threading.Thread(target=self._watch, name="handler-reloader", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """Run one job (or request) on the current handlers: reload first if files changed, none meanwhile."""
        self.check()
        with self._state:
            while self._reloading:
                self._state.wait()
            self._running += 1
        try:
            yield
        finally:
            with self._state:
                self._running -= 1
                self._state.notify_all()

    def check(self) -> bool:
        """Reload when the package's files changed since the last (good or failed) import; ``True`` if it did."""
        with self._reload_lock:
            stamp = self._scan()
            if stamp in (self._stamp, self._failed):
                return False
            with self._state:
                self._reloading = True
                while self._running:
                    self._state.wait()
            try:
                return self._reload(stamp)
            finally:
                with self._state:
                    self._reloading = False
                    self._state.notify_all()

    def _scan(self) -> _Stamp:
        stamp: _Stamp = {}
        for path in sorted(self.folder.rglob("*.py")):
            with contextlib.suppress(OSError):  # a file deleted or being replaced right now
                info = path.stat()
                stamp[str(path.relative_to(self.folder))] = (info.st_mtime_ns, info.st_size)
        return stamp

    def _reload(self, stamp: _Stamp) -> bool:
        changed = sorted(
            name for name in stamp.keys() | self._stamp.keys() if stamp.get(name) != self._stamp.get(name)
        )
        for (
            name
        ) in changed:  # a .pyc records the source's mtime in whole seconds: a quick edit could match it
            with contextlib.suppress(OSError, ValueError):
                Path(importlib.util.cache_from_source(str(self.folder / name))).unlink(missing_ok=True)
        saved = self._unload()
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(self.package)
            listener = getattr(module, "listener", None)
            if not isinstance(listener, FlatfileListener):
                raise TypeError(f"{self.package}.listener is not a FlatfileListener")
            load_plugins(listener)  # every handler module now: an import error keeps the previous handlers
        except Exception as exc:
            self._unload()
            sys.modules.update(saved)
            self._failed = stamp
            detail = "".join(traceback.format_exception(exc)).rstrip()
            self._say(
                self.style.red(f"Reload of {self.package} failed; the previous handlers stay in use:")
                + "\n"
                + detail
            )
            return False
        self._stamp, self._failed = stamp, None
        self.on_reload(listener)
        self.reloads += 1
        self._say(self.style.cyan(f"Reloaded {self.package} ({', '.join(changed)} changed)"))
        return True

    def _unload(self) -> dict[str, ModuleType]:
        """Take the package and its modules out of ``sys.modules``; returns them."""
        names = [name for name in sys.modules if name == self.package or name.startswith(self.package + ".")]
        return {name: sys.modules.pop(name) for name in names}

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
