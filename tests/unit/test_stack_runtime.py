"""flatfile_stack.runtime: each app's FunctionRuntime builds its own runtime once; a local run hands one in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flatfile_jobs import FlatfileListener
from flatfile_stack import worker
from flatfile_stack.idempotency import MemoryPersistenceLayer
from flatfile_stack.queues import MemoryJobQueue
from flatfile_stack.runtime import FunctionRuntime, Runtime, use_runtime
from flatfile_stack.settings import Settings


@pytest.fixture(autouse=True)
def nothing_handed_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No queue URL (a local in-memory queue) and no runtime handed in, before and after."""
    monkeypatch.delenv("JOB_QUEUE_URL", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    use_runtime(None)
    yield
    use_runtime(None)


def _runtime(listener: FlatfileListener) -> Runtime:
    return Runtime(
        settings=Settings(),
        queue=MemoryJobQueue(),
        webhook_secrets=str,
        api_token=lambda: "sk_test",
        persistence=MemoryPersistenceLayer(),
        listener=listener,
    )


def test_each_app_builds_its_own_runtime_once_from_its_listener() -> None:
    """Two apps in one process get two runtimes (no shared cache); each is built once and reused."""
    first, second = FunctionRuntime(FlatfileListener()), FunctionRuntime(FlatfileListener())
    assert first() is first()
    assert first() is not second()
    assert first().listener is first.listener
    assert second().listener is second.listener


def test_a_handed_in_runtime_wins_until_it_is_taken_back() -> None:
    """use_runtime(r) makes every app use r; use_runtime(None) gives each its own back."""
    app = FunctionRuntime(FlatfileListener())
    own = app()
    handed = _runtime(FlatfileListener())
    use_runtime(handed)
    assert app() is handed
    use_runtime(None)
    assert app() is own


def test_each_runtime_has_its_own_job_runner_for_its_own_store() -> None:
    """The worker's idempotent runner lives on its runtime: two runtimes never share one (nor its config)."""
    listener = FlatfileListener()
    one, two = _runtime(listener), _runtime(listener)
    assert worker.runner_for(one) is worker.runner_for(one)
    assert worker.runner_for(one) is not worker.runner_for(two)
    assert worker.runner_for(one).persistence is one.persistence
    one.persistence = MemoryPersistenceLayer()
    assert worker.runner_for(one).persistence is one.persistence
