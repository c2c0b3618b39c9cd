"""Entry point of the ``flatfile-jobs`` command.

Exit status: 0 success; 1 the run did not go as expected (a demo job, a failed invocation); 2 usage or
configuration errors (printed as one line naming what to set).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import demo, develop, fake_api, generate_event, invoke, serve, sign_events
from ._common import CliError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``flatfile-jobs`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="flatfile-jobs",
        description="Run Flatfile jobs locally with the same code that runs in AWS Lambda.",
        epilog="Run 'flatfile-jobs COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    demo.add_parser(commands)
    serve.add_parser(commands)
    invoke.add_parser(commands)
    develop.add_parser(commands)
    sign_events.add_parser(commands)
    generate_event.add_parser(commands)
    fake_api.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Example:
        >>> main(["sign-events", "events", "--secret", "whsec_..."])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"flatfile-jobs: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\nflatfile-jobs: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
