"""``flatfile-jobs sign-events DIR``: re-sign the receiver's sample events in place (``make events``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from flatfile_jobs.webhook import parse_secrets
from flatfile_jobs_testing import resign

from ._common import CliError
from ._events import read_event

__all__ = ["SECRET_ENV", "add_parser", "resolve_secret", "run", "sign_directory"]

SECRET_ENV = "WEBHOOK_SECRET"  # noqa: S105 - a variable name


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sign-events``."""
    parser = commands.add_parser(
        "sign-events",
        help="re-sign the HTTP API events under DIR/receiver with a fresh timestamp",
        description="Rewrite every DIR/receiver/*.json (HTTP API v2 events) with fresh Standard Webhooks "
        "headers: webhook-id = the Flatfile event id, webhook-timestamp = now, webhook-signature over the "
        "exact body. Receivers accept a signature for five minutes.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the events folder (e.g. events)")
    parser.add_argument("--secret", help=f"the signing secret, whsec_... (default ${SECRET_ENV})")
    parser.set_defaults(run=run)


def resolve_secret(value: str | None) -> str:
    """The secret from ``--secret`` or ``$WEBHOOK_SECRET``, checked.

    Raises:
        CliError: Neither is set, or the value is not ``whsec_`` + base64.
    """
    secret = value or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise CliError(f"no signing secret: pass --secret whsec_... or set {SECRET_ENV}")
    try:
        return parse_secrets(secret)[0]
    except ValueError as exc:
        raise CliError(f"invalid signing secret: {exc}") from None


def sign_directory(directory: Path, secret: str) -> list[Path]:
    """Re-sign each ``directory/receiver/*.json`` in place; return the files written.

    Raises:
        CliError: No such folder, or a file that is not an HTTP API v2 event.
    """
    folder = directory / "receiver"
    if not folder.is_dir():
        raise CliError(f"no {folder} folder: pass the events folder (the one holding receiver/)")
    written = []
    for path in sorted(folder.glob("*.json")):
        event = read_event(path)
        if event.get("version") != "2.0":
            raise CliError(f"{path} is not an HTTP API v2 event (version 2.0)")
        path.write_text(json.dumps(resign(event, secret), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    """Sign the folder's receiver events and list them."""
    secret = resolve_secret(args.secret)
    written = sign_directory(args.directory, secret)
    for path in written:
        sys.stdout.write(f"signed {path}\n")
    sys.stdout.write(f"{len(written)} event(s) signed; the signatures are accepted for five minutes.\n")
    return 0
