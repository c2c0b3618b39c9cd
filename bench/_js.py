"""The JS reference: @flatfile/plugin-job-handler 0.5.5 (+ listener 1.1.2, api 1.23.1) from npm, run with node.

The packages go into ``bench/.js/`` (git-ignored) on the first run and are reused after that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ._common import BENCH

JS_DIR = BENCH / ".js"
PACKAGES = {
    "@flatfile/plugin-job-handler": "0.5.5",
    "@flatfile/listener": "1.1.2",
    "@flatfile/api": "1.23.1",
}
# What the JS side needed to run at all (reported under the table).
NOTES = [
    "the plugin declares @flatfile/listener and @flatfile/api as peer dependencies: all three are installed by name",
    "FLATFILE_API_URL and FLATFILE_BEARER_TOKEN must be set before the plugin is imported "
    "(it builds its @flatfile/api client at module load)",
    "on Node >= 18 @flatfile/api uses the built-in fetch (undici), which rejects the `Keep-Alive: timeout=200` "
    "header the SDK adds to every request (`InvalidArgumentError: invalid keep-alive header`, surfacing as "
    "`FlatfileError: fetch failed`): unshimmed, every job fails before its ack and the process then hangs 60 s "
    "on the SDK's uncleared timeout; the bench wraps `fetch` to drop that one header",
    "events are handed to FlatfileListener.dispatchEvent(rawEvent), which awaits every callback",
]


class JsUnavailable(RuntimeError):
    """node or npm is missing, or the install failed."""


def _installed(name: str) -> str | None:
    manifest = JS_DIR / "node_modules" / name / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text()).get("version"))


def ensure_installed() -> str:
    """Install the pinned packages into ``bench/.js`` unless they are there; return node's version."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise JsUnavailable("node and npm are needed for the JS comparison")
    JS_DIR.mkdir(exist_ok=True)
    if any(_installed(name) != version for name, version in PACKAGES.items()):
        manifest = {
            "name": "flatfile-jobs-bench-js",
            "private": True,
            "type": "module",
            "dependencies": PACKAGES,
        }
        (JS_DIR / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise JsUnavailable(f"npm install failed: {done.stderr.strip()[-500:]}")
    shutil.copyfile(BENCH / "lifecycle.mjs", JS_DIR / "lifecycle.mjs")
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def run(mode: str, events: list[dict[str, Any]], *, api_url: str, token: str) -> dict[str, Any]:
    """Dispatch ``events`` to the plugin in one node process; return its timings."""
    node = shutil.which("node")
    if node is None:
        raise JsUnavailable("node is not installed")
    path: Path = JS_DIR / f"events-{mode}.json"
    path.write_text(json.dumps(events))
    env = {**os.environ, "FLATFILE_API_URL": api_url, "FLATFILE_BEARER_TOKEN": token}
    done = subprocess.run(
        [node, "lifecycle.mjs", mode, path.name],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise JsUnavailable(f"node failed: {done.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["stderr"] = done.stderr
    return result
