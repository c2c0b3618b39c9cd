"""``flatfile-jobs fake-api``: the fake Flatfile API alone, for ``sam local invoke`` and ``sam local start-api``.

The functions in SAM's Docker containers reach it as ``http://host.docker.internal:PORT`` (see
``events/env.local.json``). A job the functions refer to is created on first use, ``ready``; each progress
update and outcome the functions report is printed as Flatfile would show it.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from flatfile_jobs_testing import FakeFlatfile

from ._common import CliError, Style
from ._progress import TickPrinter

__all__ = ["DEFAULT_PORT", "DEFAULT_TOKEN", "add_parser", "fake_api", "run"]

DEFAULT_PORT = 8788
DEFAULT_TOKEN = "sk_test_fake"  # noqa: S105 - the fake's own token, as in events/env.local.json


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fake-api``."""
    parser = commands.add_parser(
        "fake-api",
        help="serve the fake Flatfile API alone (for sam local invoke/start-api in Docker)",
        description="The test kit's fake Flatfile API on a port, until Ctrl-C. Jobs are created on first use "
        "('ready'); progress and outcomes are printed as they arrive. With Docker: flatfile-jobs fake-api "
        "--host 0.0.0.0, then sam local invoke WorkerFunction -e EVENT --env-vars events/env.local.json.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 lets Docker containers reach it)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help=f"the API key it accepts (default {DEFAULT_TOKEN})"
    )
    parser.set_defaults(run=run)


def fake_api(
    args: argparse.Namespace,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[FakeFlatfile], None] | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve until ``stop`` is set or Ctrl-C; ``on_ready`` gets the running fake (tests)."""
    out = out or sys.stdout
    style = Style(out)
    stop = stop or threading.Event()
    try:
        fake = FakeFlatfile(
            token=args.token, seed=None, host=args.host, port=args.port, create_missing_jobs=True
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}): pick another --port"
        ) from None
    with fake, TickPrinter(fake, out, outcomes=True):
        port = fake.url.rsplit(":", 1)[1]
        local = f"http://127.0.0.1:{port}"
        reach = (
            f"(this machine), {style.cyan(f'http://host.docker.internal:{port}')} (Docker containers)"
            if args.host != "127.0.0.1"
            else "(this machine; pass --host 0.0.0.0 to let Docker containers in)"
        )
        out.write(
            "\n".join(
                [
                    style.bold("flatfile-jobs fake-api") + " - the fake Flatfile API for local runs",
                    f"  FLATFILE_API_URL  {style.cyan(local)} {reach}",
                    f"  FLATFILE_API_KEY  {args.token}",
                    "  Jobs              created on first use, 'ready'",
                    "",
                    "sam local invoke WorkerFunction -e EVENT --env-vars events/env.local.json",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
        out.flush()
        if on_ready is not None:
            on_ready(fake)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            out.write("\nStopping...\n")
    out.write("Stopped.\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """``flatfile-jobs fake-api``."""
    return fake_api(args)
