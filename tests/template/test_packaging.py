"""The layer ships exactly the locked dependencies, and the lock is the closure of the declared ones.

pyproject.toml declares the layer's runtime dependencies (pinned exactly); ``make lock`` (uv) compiles them and
everything they need into layers/shared/requirements.txt with hashes, which ``sam build`` installs. The dev lock
(requirements-dev.txt, which .venv installs) is compiled from requirements-dev.in and the same declaration, so
the tests run the very versions Lambda gets.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER_LOCK = ROOT / "layers/shared/requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
DEV_INPUT = ROOT / "requirements-dev.in"

# Marker values of Lambda's python3.13 runtime on arm64 (the layer's BuildArchitecture).
LAMBDA_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.13.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.13.0",
    "python_version": "3.13",
    "sys_platform": "linux",
}


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]


def parse_lock(text: str) -> dict[NormalizedName, Pin]:
    """A pip requirements file with ``\\`` continuations: each entry's pin, marker and hashes."""
    pins: dict[NormalizedName, Pin] = {}
    entries = re.sub(r"\\\n", " ", text).splitlines()
    for entry in entries:
        line = entry.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", line))
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} locked twice"
        pins[name] = Pin(name, spec.version, requirement.marker, hashes)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def closure(roots: list[Requirement], environment: dict[str, str]) -> dict[NormalizedName, str]:
    """Every distribution ``roots`` need in ``environment``, by the metadata of the installed ones."""
    needed: dict[NormalizedName, str] = {}
    todo = [(requirement, frozenset(requirement.extras)) for requirement in roots]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed[name] = metadata.version(name)
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras}
            ):
                todo.append((dependency, frozenset(dependency.extras)))
    return needed


@pytest.fixture(scope="module")
def layer_lock() -> dict[NormalizedName, Pin]:
    return parse_lock(LAYER_LOCK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_lock() -> dict[NormalizedName, Pin]:
    return parse_lock(DEV_LOCK.read_text(encoding="utf-8"))


def test_every_declared_dependency_is_pinned_exactly() -> None:
    """Each runtime dependency in pyproject.toml is pinned with == (a deploy never picks up a surprise release)."""
    requirements = declared()
    assert requirements
    for requirement in requirements:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        assert requirement.marker is None, requirement


def test_layer_lock_pins_the_declared_versions(layer_lock: dict[NormalizedName, Pin]) -> None:
    """Every dependency pyproject.toml declares is in the layer's lock at the declared version."""
    for requirement in declared():
        (spec,) = requirement.specifier
        assert layer_lock[canonicalize_name(requirement.name)].version == spec.version, requirement


def test_layer_lock_is_the_closure_of_the_declared_dependencies(
    layer_lock: dict[NormalizedName, Pin],
) -> None:
    """The lock holds what the declared dependencies need on Lambda, nothing missing and nothing left over."""
    locked = {
        name: pin.version
        for name, pin in layer_lock.items()
        if pin.marker is None or pin.marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": ""})
    }
    assert closure(declared(), LAMBDA_ENVIRONMENT) == locked


def test_every_locked_distribution_is_hashed(
    layer_lock: dict[NormalizedName, Pin], dev_lock: dict[NormalizedName, Pin]
) -> None:
    """pip installs the locks in hash-checking mode: every entry carries its files' sha256."""
    for pin in [*layer_lock.values(), *dev_lock.values()]:
        assert pin.hashes, pin.name


def test_tests_run_the_versions_the_layer_ships(
    layer_lock: dict[NormalizedName, Pin], dev_lock: dict[NormalizedName, Pin]
) -> None:
    """The dev lock (what .venv installs) pins every layer dependency at the layer's version."""
    for name, pin in layer_lock.items():
        assert dev_lock[name].version == pin.version, name
        assert metadata.version(name) == pin.version, f"{name}: .venv is not installed from the lock"


def test_dev_lock_pins_the_declared_tools(dev_lock: dict[NormalizedName, Pin]) -> None:
    """Every tool requirements-dev.in pins is in requirements-dev.txt at that version."""
    lines = [line.split("#", 1)[0].strip() for line in DEV_INPUT.read_text(encoding="utf-8").splitlines()]
    tools = [Requirement(line) for line in lines if line]
    assert tools
    for tool in tools:
        (spec,) = tool.specifier
        assert spec.operator == "==", tool
        assert dev_lock[canonicalize_name(tool.name)].version == spec.version, tool


def test_lock_parser_reads_markers_and_hashes() -> None:
    """The parser behind these checks keeps each entry's version, marker and every hash."""
    text = (
        "# header\n"
        "Foo_Bar==1.2 ; sys_platform == 'win32' \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via x\n"
        "baz==3\n"
    )
    pins = parse_lock(text)
    assert set(pins) == {"foo-bar", "baz"}
    assert pins[canonicalize_name("foo-bar")].version == "1.2"
    assert pins[canonicalize_name("foo-bar")].hashes == (f"sha256:{'a' * 64}", f"sha256:{'b' * 64}")
    marker = pins[canonicalize_name("foo-bar")].marker
    assert marker is not None
    assert not marker.evaluate(LAMBDA_ENVIRONMENT)
    assert pins[canonicalize_name("baz")].hashes == ()


# -- what ships where: the layer holds what runs in Lambda, the library's wheel holds the library --------------

TEMPLATE = ROOT / "template.yaml"
SAM = ROOT / ".venv-sam/bin/sam"
# The layer's own code: the library, the stack's adapters and the app's jobs; everything else is a locked dependency.
LAYER_PACKAGES = {"flatfile_jobs", "flatfile_stack", "flatfile_app_jobs"}
TEST_KIT = "flatfile_jobs_testing"


def layer_id() -> str:
    """The template's one LayerVersion (the layer every function uses)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    resources = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=Loader)["Resources"]
    [name] = [name for name, body in resources.items() if body["Type"] == "AWS::Serverless::LayerVersion"]
    return str(name)


def kit_files(folder: Path) -> list[str]:
    """Files under ``folder`` that are, or import, the test kit (or the library's old ``testing`` subpackage)."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if TEST_KIT in relative or relative.startswith("flatfile_jobs/testing"):
            found.append(relative)
        elif path.suffix == ".py" and TEST_KIT in path.read_text(encoding="utf-8"):
            found.append(f"{relative} (imports the test kit)")
    return found


def sam_build(resource: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build <resource>`` into a temporary folder (seconds; the same build `make build` does): its artifact."""
    import os
    import subprocess

    if not SAM.exists():
        pytest.fail(f"no SAM CLI at {SAM}: `make build` installs it")
    build_dir = tmp_path_factory.mktemp("sam-build")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["SAM_CLI_TELEMETRY"] = "0"
    subprocess.run(
        [str(SAM), "build", resource, "--build-dir", str(build_dir), "--region", "us-east-1"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return build_dir / resource


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer as `sam build` makes it: its python/ folder, which Lambda extracts to /opt/python."""
    return sam_build(layer_id(), tmp_path_factory) / "python"


def test_the_layer_built_by_sam_holds_no_test_kit(
    built_layer: Path, layer_lock: dict[NormalizedName, Pin]
) -> None:
    """What `sam build` puts in the layer: our three packages and the locked dependencies, no test kit."""
    assert kit_files(built_layer) == []
    recorded = {
        line.split("/", 1)[0].split(",", 1)[0]
        for record in built_layer.glob("*.dist-info/RECORD")
        for line in record.read_text(encoding="utf-8").splitlines()
    }
    distributions = {
        canonicalize_name(path.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for path in built_layer.glob("*.dist-info")
    }
    assert distributions <= set(layer_lock)
    top_level = {path.name for path in built_layer.iterdir()} - {"__pycache__"}
    assert top_level - recorded == LAYER_PACKAGES


def test_the_built_layer_holds_our_packages_as_in_the_source(built_layer: Path) -> None:
    """Each of our packages ships its source files, no more (no bytecode, egg-info or caches of a working copy)."""
    source = ROOT / "layers/shared"
    for package in LAYER_PACKAGES:
        shipped = source_files(built_layer / package)
        assert shipped == source_files(source / package), package
        assert f"{package}/__init__.py" in {f"{package}/{name}" for name in shipped}


def test_every_module_in_the_built_layer_has_its_bytecode(built_layer: Path) -> None:
    """Every .py in the layer (ours, the dependencies') has cpython-313 unchecked-hash bytecode of its source."""
    assert sys.implementation.cache_tag == "cpython-313", "the layer is built by this venv's python3.13"
    modules = sorted(built_layer.rglob("*.py"))
    assert len(modules) > 100
    assert {path.relative_to(built_layer).parts[0] for path in modules} >= LAYER_PACKAGES
    stale = [str(path.relative_to(built_layer)) for path in modules if not has_unchecked_bytecode(path)]
    assert stale == []


def test_the_layer_bytecode_names_its_modules_where_lambda_puts_them(built_layer: Path) -> None:
    """Each .pyc records its module's path under /opt/python, not the build's folder (the same sources, the same layer)."""
    assert misplaced_bytecode(built_layer, "/opt/python") == []


def misplaced_bytecode(folder: Path, lambda_path: str) -> list[str]:
    """Source paths recorded by the bytecode of modules under ``folder`` that are not theirs under ``lambda_path``."""
    import marshal

    wrong = []
    for module in sorted(folder.rglob("*.py")):
        cached = module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
        code = marshal.loads(cached.read_bytes()[16:])
        if code.co_filename != f"{lambda_path}/{module.relative_to(folder).as_posix()}":
            wrong.append(code.co_filename)
    return wrong


def test_the_bytecode_check_refuses_missing_stale_and_timestamp_bytecode(tmp_path: Path) -> None:
    """The check above fails a module without bytecode, with bytecode of another source, or with mtime checks."""
    import py_compile

    module = tmp_path / "module.py"
    module.write_text("VALUE = 1\n")
    assert not has_unchecked_bytecode(module)
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
    py_compile.compile(str(module), doraise=True, invalidation_mode=unchecked)
    assert has_unchecked_bytecode(module)
    module.write_text("VALUE = 2\n")
    assert not has_unchecked_bytecode(module)
    for mode in (py_compile.PycInvalidationMode.TIMESTAMP, py_compile.PycInvalidationMode.CHECKED_HASH):
        py_compile.compile(str(module), doraise=True, invalidation_mode=mode)
        assert not has_unchecked_bytecode(module), mode


def source_files(folder: Path) -> set[str]:
    """Files under ``folder`` (relative, POSIX), leaving out bytecode."""
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def has_unchecked_bytecode(module: Path) -> bool:
    """Whether ``module`` has a cpython-313 ``.pyc`` in unchecked-hash mode whose hash is its source's."""
    from importlib.util import MAGIC_NUMBER, source_hash

    cached = module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
    if not cached.is_file():
        return False
    header = cached.read_bytes()[:16]
    unchecked_hash_flags = (1).to_bytes(4, "little")  # hash-based, check_source off (PEP 552)
    expected = MAGIC_NUMBER + unchecked_hash_flags + source_hash(module.read_bytes())
    return header == expected


def test_the_layer_source_holds_no_test_kit() -> None:
    """layers/shared (the layer's ContentUri) has only the layer's packages, none of them the test kit's."""
    source = ROOT / "layers/shared"
    packages = {path.name for path in source.iterdir() if (path / "__init__.py").is_file()}
    assert packages == LAYER_PACKAGES
    assert kit_files(source) == []


def test_the_test_kit_markers_find_a_kit_module(tmp_path: Path) -> None:
    """The check above would see a copied kit and a module importing it (it is not vacuous)."""
    (tmp_path / "flatfile_jobs" / "testing").mkdir(parents=True)
    (tmp_path / "flatfile_jobs" / "testing" / "_fake.py").write_text("")
    (tmp_path / "flatfile_app_jobs").mkdir()
    (tmp_path / "flatfile_app_jobs" / "x.py").write_text("from flatfile_jobs_testing import FakeFlatfile\n")
    assert kit_files(tmp_path) == [
        "flatfile_app_jobs/x.py (imports the test kit)",
        "flatfile_jobs/testing",
        "flatfile_jobs/testing/_fake.py",
    ]


# -- the durable worker: app.py and its own hashed lock (the SDK, boto3), with bytecode for /var/task -----------

DURABLE_WORKER = "DurableWorkerFunction"
DURABLE_INPUT = ROOT / "functions/durable_worker/requirements.in"
DURABLE_LOCK = ROOT / "functions/durable_worker/requirements.txt"


@pytest.fixture(scope="module")
def durable_lock() -> dict[NormalizedName, Pin]:
    return parse_lock(DURABLE_LOCK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built_durable_worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The durable worker as `sam build` makes it, which Lambda extracts to /var/task."""
    return sam_build(DURABLE_WORKER, tmp_path_factory)


def durable_requirements() -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in DURABLE_INPUT.read_text(encoding="utf-8").splitlines()]
    return [Requirement(line) for line in lines if line]


def test_durable_worker_lock_is_the_hashed_closure_of_its_pins_at_the_tested_versions(
    durable_lock: dict[NormalizedName, Pin], dev_lock: dict[NormalizedName, Pin]
) -> None:
    """requirements.txt locks, hashed, what requirements.in's exact pins need on Lambda, at the dev lock's versions."""
    roots = durable_requirements()
    assert roots
    for requirement in roots:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        assert durable_lock[canonicalize_name(requirement.name)].version == spec.version, requirement
    locked = {
        name: pin.version
        for name, pin in durable_lock.items()
        if pin.marker is None or pin.marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": ""})
    }
    assert closure(roots, LAMBDA_ENVIRONMENT) == locked
    for name, pin in durable_lock.items():
        assert pin.hashes, name
        assert dev_lock[name].version == pin.version, name


def test_the_durable_worker_built_by_sam_holds_app_py_and_its_lock_only(
    built_durable_worker: Path, durable_lock: dict[NormalizedName, Pin]
) -> None:
    """What `sam build` puts in /var/task: app.py as in the source and the locked distributions, nothing else."""
    assert (built_durable_worker / "app.py").read_bytes() == (
        ROOT / "functions/durable_worker/app.py"
    ).read_bytes()
    recorded = {
        line.split("/", 1)[0].split(",", 1)[0]
        for record in built_durable_worker.glob("*.dist-info/RECORD")
        for line in record.read_text(encoding="utf-8").splitlines()
    }
    distributions = {
        canonicalize_name(path.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for path in built_durable_worker.glob("*.dist-info")
    }
    assert distributions == set(durable_lock)
    top_level = {path.name for path in built_durable_worker.iterdir()} - {"__pycache__"}
    assert top_level - recorded == {"app.py"}
    assert kit_files(built_durable_worker) == []


def test_every_module_in_the_built_durable_worker_has_its_bytecode_for_var_task(
    built_durable_worker: Path,
) -> None:
    """Every .py in /var/task (app.py, the SDK, boto3) has unchecked-hash bytecode naming its path under /var/task."""
    assert sys.implementation.cache_tag == "cpython-313", "the function is built by this venv's python3.13"
    modules = sorted(built_durable_worker.rglob("*.py"))
    assert len(modules) > 100
    assert built_durable_worker / "app.py" in modules
    stale = [
        str(path.relative_to(built_durable_worker)) for path in modules if not has_unchecked_bytecode(path)
    ]
    assert stale == []
    assert misplaced_bytecode(built_durable_worker, "/var/task") == []
