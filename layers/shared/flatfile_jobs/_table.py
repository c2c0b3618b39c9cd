"""An app's job table: which jobs it takes, decided without importing its handlers' modules.

A handler module may import something heavy (pandas, a vendor SDK). The receiver only has to answer "is this job
ours?", so it reads the table: each row names the job (as ``job_handler`` does) and the plugin that runs it as
``"package.module:attribute"``. The plugin's module is imported the first time one of its jobs is dispatched
(the worker), never to match one.

Example:
    >>> listener = job_table(JobRoute("space:configure", "my_app.space_configure:plugin"))
    >>> listener.matches({"topic": "job:ready", "payload": {"job": "space:configure"}})
    True
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigurationError
from ._events import PARTS_COMPLETED, FlatfileEvent
from ._listener import Callback, FlatfileListener

__all__ = ["JobRoute", "job_table", "load_plugins"]


@dataclass(frozen=True, slots=True)
class JobRoute:
    """One row of a job table.

    Attributes:
        job: The job name ``"domain:operation"`` (globs allowed) or a filter dict, exactly as the plugin's
            ``job_handler``, ``long_job_handler`` or ``multipart_job_handler`` call names it.
        plugin: Where the plugin is: ``"package.module:attribute"``, imported on the job's first dispatch.
        multipart: The plugin is a ``multipart_job_handler``: the row also takes the parent's
            ``job:parts-completed`` (a part's ``job:ready``, ``isPart: true``, matches the job like any).
    """

    job: str | Mapping[str, Any]
    plugin: str
    multipart: bool = False

    def __post_init__(self) -> None:
        module, _, attribute = self.plugin.partition(":")
        if not module or not attribute:
            raise ValueError(f"JobRoute plugin must be 'package.module:attribute', not {self.plugin!r}")


class _Deferred:
    """A row's listener callback: imports the row's plugin on first use and hands the event to it."""

    def __init__(self, route: JobRoute) -> None:
        self.route = route
        self._lock = threading.Lock()
        self._loaded: FlatfileListener | None = None

    def loaded(self) -> FlatfileListener:
        """A listener with only this row's plugin installed (the module imported once, on first use)."""
        with self._lock:
            if self._loaded is None:
                module, _, attribute = self.route.plugin.partition(":")
                plugin = getattr(importlib.import_module(module), attribute)
                self._loaded = FlatfileListener().use(plugin)
            return self._loaded

    def resolve_callback(self, event: Mapping[str, Any]) -> Callback:
        """The plugin's callback for ``event``.

        Raises:
            ConfigurationError: The plugin takes no such event, or takes it twice: the row says otherwise.
        """
        found = [sub.callback for sub in self.loaded()._selected(event)]
        if len(found) != 1:
            raise ConfigurationError(
                f"The job table routes {self.route.job!r} to {self.route.plugin}, which has {len(found)} "
                "callbacks for this event (expected one): make the row's job match the plugin's"
            )
        return found[0]

    def __call__(self, event: FlatfileEvent) -> Any:  # noqa: ANN401 - what the plugin's callback returns
        return self.resolve_callback(event.raw)(event)


def job_table(*routes: JobRoute) -> FlatfileListener:
    """A listener for the app's jobs that imports each plugin's module only when one of its jobs is dispatched.

    It matches exactly as a listener with every plugin installed would (same topics and filters, the rows in
    order); :meth:`FlatfileListener.matches` never imports a handler.

    Args:
        routes: The rows, in the order their plugins would be installed.
    """
    listener = FlatfileListener()
    for route in routes:
        topics: str | tuple[str, ...] = ("job:ready", PARTS_COMPLETED) if route.multipart else "job:ready"
        listener.on(
            topics, {"job": route.job} if isinstance(route.job, str) else dict(route.job), _Deferred(route)
        )
    return listener


def load_plugins(listener: FlatfileListener) -> None:
    """Import the plugin of every job table row of ``listener`` now, instead of on each job's first dispatch.

    For local tools: an import error shows when they start (or reload), and edits made afterwards are not picked
    up half-way. A listener built without :func:`job_table` has nothing to import.
    """
    for subscription in listener._subscriptions:
        if isinstance(subscription.callback, _Deferred):
            subscription.callback.loaded()
