"""Mutation check: each mutation of the product code below must make at least one of its tests fail.

Run by hand (not part of ``make test``): ``make mutate``, or ``.venv/bin/python tests/mutations.py [NAME ...]``
(``--list`` names them; ``--no-baseline`` skips checking that the tests pass unmutated first).

Each mutation edits one file in place, runs its tests with ``pytest -x`` and puts the file's original bytes
back in ``finally`` (also on Ctrl-C or SIGTERM), so uncommitted work in that file survives. Verdicts:
``caught`` (pytest reported failures), ``SURVIVED`` (the tests passed: a promise without a test), ``anchor
gone`` (the code no longer contains what the mutation edits: update it here), ``error`` (pytest could not
run, e.g. a mutation that no longer compiles). The exit code is 0 only when every mutation was caught.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
SHARED = "layers/shared"


@dataclass(frozen=True)
class Mutation:
    """One edit of the product code (a regular expression and its replacement) and the tests that must catch it."""

    name: str
    promise: str
    path: str
    pattern: str
    replacement: str
    tests: tuple[str, ...]
    select: str = ""  # pytest -k expression (empty: every test in ``tests``)

    def apply(self, source: str) -> str | None:
        """The mutated source, or ``None`` when the pattern is not there (exactly once)."""
        mutated, count = re.subn(self.pattern, self.replacement, source, count=1, flags=re.MULTILINE)
        return mutated if count == 1 and mutated != source else None


# Where the redelivery tests live (paths that do not exist are skipped).
RETRY_TESTS = (
    "tests/functional/test_worker.py",
    "tests/functional/test_redelivery.py",
    "tests/functional/test_dead_letter.py",
    "tests/functional/test_chaos.py",
)

MUTATIONS = (
    Mutation(
        "retry-delay-5000s",
        "a failed record is made visible again after about 30 s, 1, 2, 4 then 8 minutes",
        f"{SHARED}/flatfile_stack/worker.py",
        r"^(def retry_delay\(.*\) -> int:\n)",
        r"\1    return 5000  # mutated\n",
        RETRY_TESTS,
    ),
    Mutation(
        "no-retry-later",
        "a failed record's visibility is shortened (ChangeMessageVisibility), not left at 90 minutes",
        f"{SHARED}/flatfile_stack/worker.py",
        r"get_runtime\(\)\.queue\.retry_later\(",
        "None and get_runtime().queue.retry_later(",
        RETRY_TESTS,
    ),
    Mutation(
        "no-deadline-interrupt",
        "a sync handler outliving the deadline is interrupted (JobTimeoutError at its next bytecode)",
        f"{SHARED}/flatfile_jobs/_handler_thread.py",
        r"ctypes\.pythonapi\.PyThreadState_SetAsyncExc\(",
        "(lambda *_: 0)(",
        ("tests/functional/test_chaos.py", "tests/unit/test_lifecycle.py"),
        select="outliving or deadline_interrupts",
    ),
    Mutation(
        "keep-alive-5s",
        "one HTTP client per process, keep-alive 300 s (httpx's default 5 s drops it between invocations)",
        f"{SHARED}/flatfile_jobs/_api.py",
        r"keepalive_expiry=[^,)\n]+",
        "keepalive_expiry=5.0",
        ("tests/unit/test_api.py",),
    ),
    Mutation(
        "token-prefix-logged",
        "secrets and tokens never in logs (not even a piece of one)",
        f"{SHARED}/flatfile_jobs/_api.py",
        r"^([ \t]+)return httpx\.AsyncClient\(",
        r'\1__import__("logging").getLogger(__name__).info("client for %s", settings.token[:-2])  # mutated\n'
        r"\1return httpx.AsyncClient(",
        ("tests/functional/test_secret_leaks.py", "tests/functional/test_security.py"),
        select="log_line",
    ),
    Mutation(
        "receiver-202-when-sqs-fails",
        "the receiver never answers 202 for a delivery it could not enqueue",
        f"{SHARED}/flatfile_stack/receiver.py",
        r"^([ \t]+)runtime\.queue\.send\(delivery\)$",
        r"\1try:\n\1    runtime.queue.send(delivery)\n\1except Exception:  # mutated\n\1    pass",
        ("tests/functional/test_receiver.py", "tests/functional/test_fuzz_receiver.py"),
    ),
)


def _pytest(mutation: Mutation, timeout: float) -> tuple[int, str]:
    """Run the mutation's tests (stop at the first failure); return pytest's exit code and its last line."""
    tests = [test for test in mutation.tests if (ROOT / test.split("::")[0]).exists()]
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    if mutation.select:
        command += ["-k", mutation.select]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED tests/", "ERROR tests/"))]
    summary = lines[-1] if lines else done.stderr.strip()[-200:]
    return done.returncode, "; ".join([summary, *failed])


def check(mutation: Mutation, *, baseline: bool, timeout: float) -> str:
    """Apply, test, restore; the verdict."""
    path = ROOT / mutation.path
    original = path.read_bytes()
    mutated = mutation.apply(original.decode())
    if mutated is None:
        return f"anchor gone ({mutation.pattern!r} not in {mutation.path})"
    if baseline:
        code, summary = _pytest(mutation, timeout)
        if code != 0:
            return f"error: the tests fail unmutated ({summary})"
    try:
        path.write_text(mutated)
        code, summary = _pytest(mutation, timeout)
    finally:
        path.write_bytes(original)
    if path.read_bytes() != original:  # pragma: no cover - write_bytes above cannot fail silently
        raise RuntimeError(f"{mutation.path} was not restored")
    if code == 1:
        return f"caught ({summary})"
    if code == 0:
        return f"SURVIVED ({summary})"
    return f"error: pytest exit {code} ({summary})"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Check the named mutations (all by default); print one verdict per mutation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to check (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests unmutated first")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    args = parser.parse_args(argv)
    by_name = {mutation.name: mutation for mutation in MUTATIONS}
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name}: {mutation.promise} ({mutation.path})")
        return 0
    unknown = [name for name in args.names if name not in by_name]
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(unknown)}; --list names them")
    signal.signal(signal.SIGTERM, _stop)
    chosen = [by_name[name] for name in args.names] if args.names else list(MUTATIONS)
    verdicts = []
    for mutation in chosen:
        started = time.monotonic()
        verdict = check(mutation, baseline=not args.no_baseline, timeout=args.timeout)
        verdicts.append(verdict)
        print(f"{mutation.name:28} {verdict}  [{time.monotonic() - started:.0f} s]", flush=True)
    return 0 if all(verdict.startswith("caught") for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
