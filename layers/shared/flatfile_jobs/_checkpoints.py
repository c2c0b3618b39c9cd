"""What a durable engine gives the long-job lifecycle, and what the listener hands a durable worker.

Protocols only, so the listener can name a long job (:class:`DurableJob`) without importing the long-job
lifecycle (``_durable``), which imports the listener. ``flatfile_stack.durable`` adapts the AWS Durable
Execution SDK to :class:`Checkpoints`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ._config import ApiSettings

__all__ = ["Checkpoints", "DurableJob"]

T = TypeVar("T")


class Checkpoints(Protocol):
    """A durable engine's operations, as the lifecycle needs them (``flatfile_stack.durable`` adapts the SDK)."""

    def step(
        self, name: str, fn: Callable[[int], T], *, attempts: int, retry_if: Callable[[BaseException], bool]
    ) -> T:
        """Run ``fn(attempt)`` (attempt counts from 1) until it returns, checkpoint its JSON result.

        Raises:
            StepFailedError: ``fn`` failed ``attempts`` times, or with an error ``retry_if`` refuses.
        """
        ...

    def wait(self, name: str, seconds: int) -> None:
        """Suspend the execution for ``seconds``."""
        ...

    def is_engine_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` belongs to the engine (it must propagate, not fail the job)."""
        ...


class DurableJob(Protocol):
    """A long job as the durable worker runs it (``_durable.LongJob``; ``FlatfileListener.long_job`` finds it)."""

    @property
    def handler(self) -> Callable[..., Any]:
        """The long job's handler (what ``long_job_handler`` registered)."""
        ...

    def run_durable(
        self,
        event: Mapping[str, Any],
        engine: Checkpoints,
        *,
        time_limit: float | None = None,
        settings: ApiSettings | None = None,
    ) -> dict[str, Any]:
        """Run the job's lifecycle as steps of ``engine``; returns how it ended (a JobResult as a dict)."""
        ...
