"""The per-thread event loop: reused across dispatches, closed with its clients by shutdown()."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import flatfile_jobs
from flatfile_jobs import FlatfileEvent, FlatfileListener
from flatfile_jobs._config import ApiSettings
from flatfile_jobs._event_loops import run_sync
from flatfile_jobs_testing import FakeFlatfile


def test_shutdown_closes_the_threads_loop_and_its_clients(
    fake: FakeFlatfile, listen: Callable[..., FlatfileListener]
) -> None:
    """After shutdown() the client the handler saw is closed and the next dispatch gets a fresh one."""
    seen: list[Any] = []

    def handler(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        seen.append(event.api)

    def in_thread() -> None:
        listener = listen(handler)
        listener.dispatch(fake.create_job_event())
        flatfile_jobs.shutdown()
        listener.dispatch(fake.create_job_event())
        flatfile_jobs.shutdown()

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(10)
    assert len(seen) == 2
    assert seen[0] is not seen[1]
    assert seen[0]._http.is_closed
    assert seen[1]._http.is_closed


def test_shutdown_without_a_loop_does_nothing() -> None:
    """shutdown() on a thread that never ran a job is a no-op."""
    done: list[bool] = []

    def in_thread() -> None:
        flatfile_jobs.shutdown()
        done.append(True)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(5)
    assert done == [True]


def test_run_sync_reuses_one_loop_per_thread() -> None:
    """Two run_sync calls on one thread run on the same event loop (so clients survive between jobs)."""
    import asyncio

    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    assert run_sync(loop_id()) == run_sync(loop_id())


def test_handed_down_settings_beat_the_environment_and_explicit_arguments_beat_both() -> None:
    """resolve(base=…) takes what the arguments leave open from the caller's settings, not the environment."""
    env = {"FLATFILE_API_KEY": "sk_from_env", "FLATFILE_API_URL": "http://127.0.0.1:2/api"}
    base = ApiSettings.resolve(token="sk_handed_down", api_url="http://127.0.0.1:1/api", timeout=3.0)
    assert ApiSettings.resolve(environ=env).token == "sk_from_env"
    handed = ApiSettings.resolve(environ=env, base=base)
    assert (handed.token, handed.base_url, handed.timeout) == (
        "sk_handed_down",
        "http://127.0.0.1:1/api/v1",
        3.0,
    )
    own = ApiSettings.resolve(environ=env, base=base, token="sk_own", api_url="http://127.0.0.1:3/api")
    assert (own.token, own.base_url, own.timeout) == ("sk_own", "http://127.0.0.1:3/api/v1", 3.0)


def test_sync_handlers_share_one_thread_until_one_times_out(
    fake: FakeFlatfile, listen: Callable[..., FlatfileListener]
) -> None:
    """Warm jobs reuse the handler thread; one that outlives its deadline is retired and the next gets a new one."""
    import time

    threads: list[threading.Thread] = []  # the objects, not idents: an ended thread's ident is reused

    def handler(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        threads.append(threading.current_thread())
        if event.payload.get("input", {}).get("slow"):
            for _ in range(200):
                time.sleep(0.01)

    listener = listen(handler)
    listener.dispatch(fake.create_job_event())
    listener.dispatch(fake.create_job_event())
    (timed_out,) = listener.dispatch(fake.create_job_event(input={"slow": True}), timeout=0.2)
    listener.dispatch(fake.create_job_event())
    assert timed_out.status == "timed_out"
    assert threads[0] is threads[1] is threads[2]
    assert threads[3] is not threads[2]
    assert threading.current_thread() not in threads


def test_preload_leaves_nothing_for_the_first_job_to_import() -> None:
    """After preload() (a worker's init), the first job in a fresh process imports no module: it costs what the
    later ones do. In a running event loop it still loads the modules and leaves the loop alone."""
    code = (
        "import asyncio, sys, flatfile_jobs\n"
        "from flatfile_jobs import FlatfileListener, job_handler\n"
        "from flatfile_jobs_testing import FakeFlatfile\n"
        "from flatfile_jobs._api import tls_context\n"
        "flatfile_jobs.preload()\n"
        "context = tls_context()\n"
        "flatfile_jobs.preload()\n"
        "assert tls_context() is context\n"
        "with FakeFlatfile(token='sk_pre', seed=0) as fake:\n"
        "    listener = FlatfileListener().use(\n"
        "        job_handler('pre:load', lambda event, tick: None, api_url=fake.url, token='sk_pre'))\n"
        "    event = fake.create_job_event('pre:load')\n"
        "    before = set(sys.modules)\n"
        "    [result] = listener.dispatch(event)\n"
        "    assert result.status == 'complete', result\n"
        "    new = sorted(set(sys.modules) - before)\n"
        "    assert not new, new\n"
        "async def in_loop():\n"
        "    flatfile_jobs.preload()\n"
        "asyncio.run(in_loop())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
