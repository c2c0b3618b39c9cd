"""The public surface: `flatfile_jobs.__all__` is exactly the documented names, sorted, each with a docstring."""

from __future__ import annotations

import inspect
import types
from typing import get_args

import pytest

import flatfile_jobs
import flatfile_jobs_testing

EXPECTED = {
    "ApiSettings",
    "AsyncJobHandler",
    "AsyncTick",
    "ConfigurationError",
    "DispatchError",
    "EventCursor",
    "EventPoller",
    "FileLink",
    "FlatfileAPIError",
    "FlatfileClient",
    "FlatfileEvent",
    "FlatfileJobsError",
    "FlatfileListener",
    "InvalidOutcomeError",
    "JobCanceled",
    "JobCompleteDetails",
    "JobHandler",
    "JobOutcome",
    "JobPart",
    "JobResult",
    "JobRoute",
    "JobTimeoutError",
    "Next",
    "NextDownload",
    "NextFiles",
    "NextId",
    "NextRetry",
    "NextSnapshot",
    "NextUrl",
    "NextView",
    "NextWait",
    "PartResult",
    "PartResults",
    "Plugin",
    "StepFailedError",
    "StepTick",
    "Steps",
    "Tick",
    "job_handler",
    "job_table",
    "long_job_handler",
    "multipart_job_handler",
    "preload",
    "shutdown",
}


def _own_docstring(obj: object) -> str:
    """The docstring written for ``obj`` itself (not inherited, not a dataclass's generated signature)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        return "" if doc.startswith(f"{obj.__name__}(") else doc.strip()
    return (getattr(obj, "__doc__", None) or "").strip()


def test_all_is_sorted() -> None:
    """__all__ is kept sorted, as house style asks."""
    assert list(flatfile_jobs.__all__) == sorted(flatfile_jobs.__all__)


def test_all_is_exactly_the_public_surface() -> None:
    """__all__ equals the expected names: nothing missing, nothing extra, no duplicates."""
    assert len(flatfile_jobs.__all__) == len(set(flatfile_jobs.__all__))
    assert set(flatfile_jobs.__all__) == EXPECTED


def test_no_other_public_names_leak_into_the_package() -> None:
    """Apart from submodules, every non-underscore attribute of the package is in __all__ (lazy ones resolved)."""
    for name in flatfile_jobs.__all__:
        getattr(flatfile_jobs, name)
    public = {
        name
        for name, value in vars(flatfile_jobs).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(flatfile_jobs.__all__)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_public_name_is_importable_and_documented(name: str) -> None:
    """Each public name resolves and has a docstring of its own (a type alias: each of its members)."""
    obj = getattr(flatfile_jobs, name)
    if isinstance(obj, types.UnionType):  # a type alias carries no docstring at runtime
        members = get_args(obj)
        assert members
        assert all(_own_docstring(member) for member in members)
        assert all(getattr(flatfile_jobs, member.__name__) is member for member in members)
    else:
        assert _own_docstring(obj), f"{name} has no docstring"


def test_next_alias_lists_every_next_variant() -> None:
    """`Next` is the union of exactly the eight Next* classes."""
    variants = {name for name in EXPECTED if name.startswith("Next") and name != "Next"}
    assert {member.__name__ for member in get_args(flatfile_jobs.Next)} == variants


def test_errors_share_one_root() -> None:
    """Every public exception derives from FlatfileJobsError, and their names end in Error (JobCanceled aside)."""
    errors = [getattr(flatfile_jobs, n) for n in EXPECTED if inspect.isclass(getattr(flatfile_jobs, n))]
    errors = [e for e in errors if issubclass(e, BaseException)]
    assert len(errors) == 8
    assert all(issubclass(e, flatfile_jobs.FlatfileJobsError) for e in errors)
    assert {e.__name__ for e in errors if not e.__name__.endswith("Error")} == {"JobCanceled"}


def test_the_test_kit_is_a_documented_public_package() -> None:
    """The test kit, a package of its own (flatfile_jobs_testing), has a sorted __all__, each name documented."""
    kit = flatfile_jobs_testing
    assert list(kit.__all__) == sorted(kit.__all__)
    assert {"FakeFlatfile", "Fault", "RecordedRequest", "forwarded_event", "job_ready_event"} <= set(
        kit.__all__
    )
    assert all(_own_docstring(getattr(kit, name)) for name in kit.__all__)


def test_the_client_type_is_public_but_loaded_only_when_asked() -> None:
    """`flatfile_jobs.FlatfileClient` is event.api's class; importing the package alone loads no API client code."""
    import subprocess
    import sys

    code = (
        "import sys, flatfile_jobs; assert 'flatfile_jobs._api' not in sys.modules; "
        "assert 'stamina' not in sys.modules; "
        "from flatfile_jobs import FlatfileClient; from flatfile_jobs._api import FlatfileClient as C; "
        "assert FlatfileClient is C"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_package_leaves_multipart_polling_and_admin_code_unloaded() -> None:
    """The receiver's cold start imports the package: multi-part, polling, admin and shutdown code load on use."""
    import subprocess
    import sys

    lazy = ["_dead_letters", "_event_loops", "_part_results", "_parts", "_polling"]
    code = (
        "import sys, flatfile_jobs\n"
        f"loaded = [name for name in {lazy!r} if 'flatfile_jobs.' + name in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from flatfile_jobs import EventPoller, multipart_job_handler\n"
        "from flatfile_jobs._polling import EventPoller as Poller\n"
        "assert EventPoller is Poller and 'flatfile_jobs._parts' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
