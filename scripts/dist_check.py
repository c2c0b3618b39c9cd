"""``make dist-check``: build the library's and the test kit's wheel and sdist, and try them where users will.

1. ``uv build`` the library (``pyproject.toml``) and the test kit (``testkit/``) into a temporary folder.
2. Check the library's wheel holds ``flatfile_jobs`` (with ``py.typed``) and nothing else, its sdist none of the
   stack's adapters, sample jobs, test kit or CLI, and the test kit's wheel only ``flatfile_jobs_testing``.
3. Make a clean Python 3.13 venv outside the repository, install the layer's hashed lock (the library's pinned
   dependencies, from the package registry), then both wheels from the folder alone (``--no-index``).
4. There, outside the repository, run the README's first handler example against the test kit's fake with
   ``POWERTOOLS_LOG_LEVEL=DEBUG`` and check its requests and its debug lines on stderr.

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LOCK = ROOT / "layers/shared/requirements.txt"
COMPLETE_LINE = "[@flatfile/plugin-job-handler]:[INFO] Job complete"

RUNNER = """
import json
import os
import sys

from flatfile_jobs import FlatfileListener
from flatfile_jobs_testing import FakeFlatfile

with FakeFlatfile(token="sk_test_D1stCh3ckT0ken") as fake:
    os.environ["FLATFILE_API_URL"] = fake.url
    os.environ["FLATFILE_BEARER_TOKEN"] = fake.token
    import readme_handler

    event = fake.create_job_event("space:configure")
    [result] = FlatfileListener().use(readme_handler.plugin).dispatch(event)
    job_id = event["context"]["jobId"]
    calls = [call.replace(job_id, "{id}") for call, _ in fake.calls(job_id)]
    print(json.dumps({"status": result.status, "calls": calls, "job": fake.job(job_id)["status"]}))
"""


class CheckError(Exception):
    """A check failed; the message says which and what was found."""


def readme_handler() -> str:
    """The README's first Python example that builds a handler with ``job_handler``."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S)
    for block in blocks:
        if "job_handler(" in block:
            return str(block)
    raise CheckError("README.md has no ```python example using job_handler(")


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command, return its stdout; raise CheckError with its output when it fails."""
    done = subprocess.run(  # noqa: S603 - our own commands, no shell
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise CheckError(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def build(out: Path) -> None:
    """The library's and the test kit's wheel and sdist, with uv (pinned in requirements-dev.in)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    for project in (ROOT, ROOT / "testkit"):
        # The sdist first, then the wheel from it (uv build's default): no build/ folder is left in the tree.
        run(uv, "build", "--quiet", "--out-dir", out, project)


def only(names: list[str], allowed: tuple[str, ...], what: str) -> None:
    """Every name starts with one of ``allowed``."""
    stray = sorted(name for name in names if not name.startswith(allowed))
    if stray:
        raise CheckError(f"{what} holds more than {allowed}: {stray[:10]}")


def check_contents(out: Path) -> None:
    """The library's wheel is flatfile_jobs alone (typed); its sdist and the kit's wheel hold only their own."""
    [wheel] = out.glob("flatfile_jobs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    only(names, ("flatfile_jobs/", "flatfile_jobs-0.1.0.dist-info/"), wheel.name)
    for required in ("flatfile_jobs/__init__.py", "flatfile_jobs/py.typed"):
        if required not in names:
            raise CheckError(f"{wheel.name} lacks {required}")
    if any(name.startswith("flatfile_jobs/testing/") for name in names):
        raise CheckError(f"{wheel.name} still holds the test kit")
    [sdist] = out.glob("flatfile_jobs-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = [member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()]
    only(
        members,
        (
            "layers/shared/flatfile_jobs",
            "PKG-INFO",
            "README.md",
            "pyproject.toml",
            "setup.cfg",
            "MANIFEST.in",
        ),
        sdist.name,
    )
    [kit] = out.glob("flatfile_jobs_testing-*.whl")
    kit_names = zipfile.ZipFile(kit).namelist()
    only(kit_names, ("flatfile_jobs_testing/", "flatfile_jobs_testing-0.1.0.dist-info/"), kit.name)
    if "flatfile_jobs_testing/py.typed" not in kit_names:
        raise CheckError(f"{kit.name} lacks py.typed")


def install(out: Path, venv: Path) -> Path:
    """A clean python3.13 venv with the lock's dependencies and the two wheels (found in ``out`` only)."""
    python313 = run(ROOT / "scripts/find-python").strip()
    run(python313, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", LOCK)
    run(python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", out, "flatfile-jobs-testing")
    run(python, "-m", "pip", "check")
    return python


def check_readme_example(python: Path, work: Path) -> None:
    """The README's handler, run against the fake outside the repo: it completes and prints its debug lines."""
    (work / "readme_handler.py").write_text(readme_handler(), encoding="utf-8")
    (work / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "PYTHON"))}
    env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    done = subprocess.run(  # noqa: S603 - the venv's python on our script
        [str(python), "runner.py"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise CheckError(f"the README example failed:\n{done.stdout}{done.stderr}")
    outcome = json.loads(done.stdout.splitlines()[-1])
    expected_calls = ["POST /jobs/{id}/ack"] * 3 + ["POST /jobs/{id}/complete"]
    if outcome != {"status": "complete", "calls": expected_calls, "job": "complete"}:
        raise CheckError(f"the README example ran, but: {outcome}")
    lines = done.stderr.splitlines()
    api_calls = [line for line in lines if "Flatfile API call" in line and "status=200" in line]
    if not lines or "Job received" not in lines[0] or len(api_calls) != 4 or COMPLETE_LINE not in done.stderr:
        raise CheckError(f"the README example's debug lines are missing from stderr:\n{done.stderr}")
    leaked = run(
        python,
        "-I",
        "-c",
        "import importlib.util as u; print([m for m in ('flatfile_stack', 'flatfile_app_jobs', "
        "'flatfile_jobs_cli', 'flatfile_jobs.testing') if u.find_spec(m.split('.')[0]) and "
        "(m != 'flatfile_jobs.testing' or u.find_spec(m))])",
        cwd=work,
    )
    if leaked.strip() != "[]":
        raise CheckError(f"the clean venv can import what the library must not install: {leaked.strip()}")


def main() -> int:
    """Build, inspect, install, run; print each step."""
    with tempfile.TemporaryDirectory(prefix="flatfile-jobs-dist-") as temporary:
        base = Path(temporary)
        out, work = base / "dist", base / "work"
        work.mkdir()
        try:
            build(out)
            print(f"dist-check: built {', '.join(sorted(path.name for path in out.iterdir()))}")
            check_contents(out)
            print(
                "dist-check: flatfile-jobs holds flatfile_jobs only (py.typed); the kit its own package only"
            )
            python = install(out, base / "venv")
            print("dist-check: installed in a clean python3.13 venv (lock hashed; wheels with --no-index)")
            check_readme_example(python, work)
            print("dist-check: the README handler completed against the fake and printed its debug lines")
        except CheckError as exc:
            print(f"dist-check: FAILED: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
