"""Mutation check: each mutation of the product code below must make at least one of its tests fail.

Run by hand (not part of ``make test``): ``make mutate``, or ``.venv/bin/python tests/mutations.py [NAME ...]``
(``--list`` names them; ``--no-baseline`` skips checking that the tests pass unmutated first).

Each mutation edits one file in place, runs its tests with ``pytest -x`` and puts the file's original bytes
back in ``finally`` (also on Ctrl-C or SIGTERM), so uncommitted work in that file survives. Verdicts:
``caught`` (pytest reported failures), ``SURVIVED`` (the tests passed: a promise without a test), ``anchor
gone`` (the code no longer contains what the mutation edits: update it here), ``tests gone`` (a test file
listed here was moved: update it here; a test name pytest cannot find is an ``error``), ``error`` (pytest could
not run, e.g. a mutation that no longer compiles). The exit code is 0 only when every mutation was caught.
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


# The backoff schedule on the queue's simulated clock: the gaps between receives of a failing record.
BACKOFF_TEST = (
    "tests/functional/test_worker.py::test_failed_record_comes_back_after_30s_1_2_4_min_then_is_dead_lettered"
)

MUTATIONS = (
    Mutation(
        "retry-delay-5000s",
        "a failed record is made visible again after about 30 s, 1, 2, 4 then 8 minutes",
        f"{SHARED}/flatfile_stack/worker.py",
        r"^(def retry_delay\(.*\) -> int:\n)",
        r"\1    return 5000  # mutated\n",
        (BACKOFF_TEST,),
    ),
    Mutation(
        "no-retry-later",
        "a failed record's visibility is shortened (ChangeMessageVisibility), not left at 90 minutes",
        f"{SHARED}/flatfile_stack/worker.py",
        r"            queue\.retry_later\(",
        "            None and queue.retry_later(",
        (BACKOFF_TEST,),
    ),
    Mutation(
        "no-deadline-interrupt",
        "a sync handler outliving the deadline is interrupted (JobTimeoutError at its next bytecode)",
        f"{SHARED}/flatfile_jobs/_handler_thread.py",
        r"ctypes\.pythonapi\.PyThreadState_SetAsyncExc\(",
        "(lambda *_: 0)(",
        (
            "tests/functional/test_chaos.py::test_handler_outliving_the_deadline_fails_the_job",
            "tests/unit/test_lifecycle.py::test_deadline_interrupts_the_handler_and_fails_the_job",
        ),
    ),
    Mutation(
        "keep-alive-5s",
        "one HTTP client per process, keep-alive 300 s (httpx's default 5 s drops it between invocations)",
        f"{SHARED}/flatfile_jobs/_api.py",
        r"keepalive_expiry=[^,)\n]+",
        "keepalive_expiry=5.0",
        ("tests/unit/test_api.py::test_keep_alive_outlasts_gaps_between_warm_invocations",),
    ),
    Mutation(
        "token-prefix-logged",
        "secrets and tokens never in logs (not even a piece of one)",
        f"{SHARED}/flatfile_jobs/_api.py",
        r"^([ \t]+)return httpx\.AsyncClient\(",
        r'\1__import__("logging").getLogger(__name__).info("client for %s", settings.token[:-2])  # mutated\n'
        r"\1return httpx.AsyncClient(",
        (
            "tests/functional/test_secret_leaks.py::test_no_piece_of_a_secret_in_any_log_line_of_the_cloud_wiring",
            "tests/functional/test_security.py::test_no_secret_in_any_log_line_of_a_chaos_run",
        ),
    ),
    Mutation(
        "receiver-202-when-sqs-fails",
        "the receiver never answers 202 for a delivery it could not enqueue",
        f"{SHARED}/flatfile_stack/receiver.py",
        r"^([ \t]+)runtime\.queue\.send\(delivery\)$",
        r"\1try:\n\1    runtime.queue.send(delivery)\n\1except Exception:  # mutated\n\1    pass",
        (
            "tests/functional/test_receiver.py::test_queue_failing_answers_503_with_retry_after_and_logs_an_error",
        ),
    ),
    Mutation(
        "no-handler-left-ready",
        "a queued job no worker handler takes fails its record (ERROR, RecordsFailed, dead letter), not left ready",
        f"{SHARED}/flatfile_stack/worker.py",
        r"^([ \t]+)if not results:$",
        r"\1if False:  # mutated",
        (
            "tests/functional/test_worker.py::"
            "test_a_job_no_handler_takes_fails_its_record_at_error_instead_of_staying_ready_unseen",
        ),
    ),
)


def _pytest(mutation: Mutation, timeout: float) -> tuple[int, str]:
    """Run the mutation's tests (stop at the first failure); return pytest's exit code and its last line."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests]
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
    missing = [test for test in mutation.tests if not (ROOT / test.split("::")[0]).is_file()]
    if missing:  # pytest given no path would run the whole suite
        return f"tests gone ({', '.join(missing)})"
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
