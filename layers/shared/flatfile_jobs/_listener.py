"""FlatfileListener (on / use / dispatch / matches) and job_handler, the plugin that runs job lifecycles."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, overload

from ._config import ApiSettings, debug_from_env, handler_settings
from ._contract import AsyncJobHandler, JobHandler
from ._errors import DispatchError
from ._events import FlatfileEvent
from ._log import get_logger
from ._matching import flatten, matches_flat, matches_topic

if TYPE_CHECKING:
    from ._checkpoints import DurableJob
    from ._results import JobResult

__all__ = ["Callback", "FlatfileListener", "Plugin", "job_handler"]

Callback: TypeAlias = Callable[[FlatfileEvent], Any]
CallbackT = TypeVar("CallbackT", bound=Callback)
HandlerT = TypeVar("HandlerT", bound=JobHandler | AsyncJobHandler)


class Plugin(Protocol):
    """What ``job_handler`` and the other ``*_handler`` functions return: ``listener.use(plugin)`` installs it."""

    def __call__(self, listener: FlatfileListener, /) -> object:
        """Register the plugin's callbacks on ``listener``."""
        ...


@dataclass(frozen=True, slots=True)
class _Subscription:
    query: str | tuple[str, ...]
    filter: Mapping[str, Any] | None
    callback: Callback
    flat_filter: Mapping[str, Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Flattened once here, so routing an event flattens only the event (once for all subscriptions).
        object.__setattr__(self, "flat_filter", None if self.filter is None else flatten(self.filter))


class FlatfileListener:
    """Routes events to callbacks by topic glob and filter, like ``@flatfile/listener``.

    Example:
        >>> listener = FlatfileListener()
        >>> @listener.job("space:configure")
        ... def configure_space(event, tick):
        ...     tick(50, "Halfway there!")
        >>> listener.matches({"topic": "job:ready", "payload": {"job": "space:configure"}})
        True
    """

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    @overload
    def on(
        self, query: str | Sequence[str], filter: Mapping[str, Any] | None = None
    ) -> Callable[[CallbackT], CallbackT]: ...

    @overload
    def on(
        self, query: str | Sequence[str], filter: Mapping[str, Any] | None, callback: CallbackT
    ) -> CallbackT: ...

    def on(
        self,
        query: str | Sequence[str],
        filter: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> Any:
        """Register ``callback`` for topics ``query`` and an optional ``filter``; without one, a decorator."""
        topics = query if isinstance(query, str) else tuple(query)

        def register(fn: CallbackT) -> CallbackT:
            self._subscriptions.append(_Subscription(topics, filter, fn))
            return fn

        return register if callback is None else register(callback)

    def use(self, plugin: Plugin) -> FlatfileListener:
        """Install a plugin (``plugin(listener)``) and return the listener."""
        plugin(self)
        return self

    def job(
        self,
        job: str | Mapping[str, Any],
        *,
        debug: bool = False,
        tick_interval: float = 1.0,
        api_url: str | None = None,
        token: str | None = None,
        request_timeout: float | None = None,
        retry_budget: float | None = None,
    ) -> Callable[[HandlerT], HandlerT]:
        """Decorator form of ``listener.use(job_handler(job, handler, ...))``, with ``job_handler``'s options.

        The decorated function is returned unchanged (sync or async, its type kept).
        """

        def register(handler: HandlerT) -> HandlerT:
            self.use(
                job_handler(
                    job,
                    handler,
                    debug=debug,
                    tick_interval=tick_interval,
                    api_url=api_url,
                    token=token,
                    request_timeout=request_timeout,
                    retry_budget=retry_budget,
                )
            )
            return handler

        return register

    def _selected(self, event: Mapping[str, Any]) -> Iterator[_Subscription]:
        """The subscriptions ``event`` matches, in registration order."""
        topic = str(event.get("topic") or "")
        paths: dict[str, Any] | None = None
        for sub in self._subscriptions:
            if not matches_topic(sub.query, topic):
                continue
            if sub.flat_filter is not None:
                paths = flatten(event) if paths is None else paths
                if not matches_flat(sub.flat_filter, paths):
                    continue
            yield sub

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether any callback would run for ``event``."""
        return next(self._selected(event), None) is not None

    def long_job(self, event: Mapping[str, Any]) -> DurableJob | None:
        """The first long job (``long_job_handler``) ``event`` matches, ``None`` when it matches none."""
        for sub in self._selected(event):
            callback = sub.callback
            resolve = getattr(callback, "resolve_callback", None)  # a job table's row: import its plugin
            if resolve is not None:
                callback = resolve(event)
            long_job: DurableJob | None = getattr(callback, "long_job", None)
            if long_job is not None:
                return long_job
        return None

    def dispatch(
        self, event: Mapping[str, Any], *, timeout: float | None = None, settings: ApiSettings | None = None
    ) -> list[Any]:
        """Run every matching callback in registration order; see :meth:`adispatch`."""
        from ._event_loops import run_sync

        return run_sync(self.adispatch(event, timeout=timeout, settings=settings))

    async def adispatch(
        self, event: Mapping[str, Any], *, timeout: float | None = None, settings: ApiSettings | None = None
    ) -> list[Any]:
        """Run every matching callback in order (awaiting async ones) and return their results.

        Job handlers return a :class:`JobResult`.

        Args:
            event: The raw event.
            timeout: Seconds the jobs have from now (their deadline); ``None``: no deadline.
            settings: How the jobs reach the Flatfile API (a handler's own ``api_url``/``token`` options
                override them); ``None``: the environment's. Callbacks read both from the event they get
                (:attr:`FlatfileEvent.deadline`, :attr:`FlatfileEvent.settings`).

        Raises:
            DispatchError: After all callbacks ran, when any raised (each was logged as it happened).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        view = FlatfileEvent.of(event, deadline=deadline, settings=settings)
        results: list[Any] = []
        errors: list[BaseException] = []
        for sub in list(self._selected(event)):
            try:
                value = sub.callback(view)
                results.append(await value if isinstance(value, Awaitable) else value)
            except Exception as exc:
                # One line naming the error, no traceback: the DispatchError raised below carries it, and
                # whoever catches that logs or prints it once (the worker does, with its traceback).
                get_logger().error(
                    "Listener callback failed",
                    extra={
                        "event_id": view.id,
                        "topic": view.topic,
                        "job_id": view.job_id,
                        "job": view.job,
                        "reason": f"{type(exc).__name__}: {exc}",
                    },
                )
                errors.append(exc)
        if errors:
            raise DispatchError(errors) from errors[0]
        return results


def job_handler(
    job: str | Mapping[str, Any],
    handler: JobHandler | AsyncJobHandler,
    *,
    debug: bool = False,
    tick_interval: float = 1.0,
    api_url: str | None = None,
    token: str | None = None,
    request_timeout: float | None = None,
    retry_budget: float | None = None,
) -> Plugin:
    """A plugin that runs ``handler(event, tick)`` for each matching ``job:ready`` event.

    Like ``jobHandler(job, handler, opts)``: ``job`` is ``"domain:operation"`` (globs allowed) or a filter.

    Args:
        job: The job name, or a filter dict for the event.
        handler: ``def handler(event: FlatfileEvent, tick: Tick)`` (a :class:`JobHandler`) or ``async def
            handler(event: FlatfileEvent, tick: AsyncTick)`` (an :class:`AsyncJobHandler`); returns ``None``, a
            ``JobCompleteDetails`` or the equivalent dict.
        debug: Log "Job received", every API call and "Job complete" at INFO (also on with
            ``POWERTOOLS_LOG_LEVEL=DEBUG``); with no logging configured, those lines go to stderr.
        tick_interval: Seconds between progress requests; ``0`` sends every tick like the JS plugin.
        api_url: The API root (default ``FLATFILE_API_URL``, else Flatfile's).
        token: The bearer token (default the dispatch's ``settings``, else ``FLATFILE_BEARER_TOKEN``/
            ``FLATFILE_API_KEY``).
        request_timeout: Seconds per request.
        retry_budget: Seconds all attempts of one API call may take.

    Example:
        >>> listener = FlatfileListener()
        >>> listener.use(job_handler("space:configure", lambda event, tick: None))  # doctest: +ELLIPSIS
        <flatfile_jobs._listener.FlatfileListener object at ...>
    """
    if not callable(handler):
        raise TypeError("job_handler() needs a callable handler(event, tick)")
    if tick_interval < 0:
        raise ValueError("tick_interval must be >= 0")
    filter_ = {"job": job} if isinstance(job, str) else dict(job)
    settings = handler_settings(
        api_url=api_url, token=token, request_timeout=request_timeout, retry_budget=retry_budget
    )

    async def run(event: FlatfileEvent) -> JobResult:
        from ._api import client_for
        from ._lifecycle import run_job

        verbose = debug or debug_from_env()
        client = client_for(settings(event.settings), debug=verbose)
        return await run_job(
            event,
            handler,
            client=client,
            tick_interval=tick_interval,
            debug=verbose,
            deadline=event.deadline,
        )

    def plugin(listener: FlatfileListener) -> None:
        listener.on("job:ready", filter_, run)

    return plugin
