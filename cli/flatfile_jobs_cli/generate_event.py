"""``flatfile-jobs generate-event SHAPE JOB``: an event for any job, like ``sam local generate-event``.

Prints (to stdout) a ``job:ready`` event for ``domain:operation`` in the shape one function takes: the
receiver's HTTP API v2 request (optionally signed), the worker's SQS batch, the dead-letter function's record,
or the raw event as Flatfile stores it. Pipe it to a file and hand it to ``flatfile-jobs invoke`` or
``sam local invoke -e``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import CliError
from ._events import FunctionName, flatfile_event, function_event
from .sign_events import SECRET_ENV, resolve_secret

__all__ = ["SHAPES", "add_parser", "generate", "run"]

SHAPES: dict[str, FunctionName | None] = {
    "receiver": "receiver",
    "worker": "worker",
    "dead-letter": "dead_letter",
    "raw": None,
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``generate-event``."""
    parser = commands.add_parser(
        "generate-event",
        help="print a job:ready event for any job, shaped for one function",
        description="Print a job:ready event for JOB (domain:operation): 'receiver' an HTTP API v2 request "
        "(POST /webhook; --sign signs it), 'worker' an SQS batch of one record (body + eventId/jobId/job "
        "attributes), 'dead-letter' that record from the dead-letter queue, 'raw' the event as Flatfile "
        "stores it. Example: flatfile-jobs generate-event worker sheet:export --context sheetId=us_sh_1 "
        "> event.json && flatfile-jobs invoke event.json",
    )
    parser.add_argument(
        "shape", choices=list(SHAPES), metavar="SHAPE", help="receiver|worker|dead-letter|raw"
    )
    parser.add_argument("job", metavar="JOB", help="the job name, domain:operation (e.g. sheet:export)")
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a context value, e.g. jobId=us_jb_1 workbookId=us_wb_1 sheetId=us_sh_1 (repeatable)",
    )
    parser.add_argument("--input", metavar="JSON", help="payload.input, a JSON object (default {})")
    parser.add_argument(
        "--sign", action="store_true", help=f"sign a receiver event (secret: --secret or ${SECRET_ENV})"
    )
    parser.add_argument("--secret", help="the signing secret, whsec_... (implies --sign)")
    parser.set_defaults(run=run)


def _context(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--context {pair!r}: give KEY=VALUE, e.g. --context sheetId=us_sh_1")
        values[key.strip()] = value
    return values


def _input(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--input is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError('--input must be a JSON object, e.g. --input \'{"format": "csv"}\'')
    return value


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """The event the arguments ask for.

    Raises:
        CliError: A bad job name, context pair, input, or signing a shape that is not the receiver's.
    """
    function = SHAPES[args.shape]
    signing = bool(args.sign or args.secret)
    if signing and function != "receiver":
        raise CliError("only receiver events are signed (--sign/--secret go with 'receiver')")
    event = flatfile_event(args.job, context=_context(args.context), input=_input(args.input))
    if function is None:
        return event
    return function_event(function, event, secret=resolve_secret(args.secret) if signing else None)


def run(args: argparse.Namespace) -> int:
    """Print the event as JSON."""
    sys.stdout.write(json.dumps(generate(args), indent=2) + "\n")
    return 0
