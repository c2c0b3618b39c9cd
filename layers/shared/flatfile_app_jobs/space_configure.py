"""``space:configure``: set up a new space, reporting progress as it goes (the plugin's Basic Usage)."""

from __future__ import annotations

from flatfile_jobs import FlatfileEvent, Tick, job_handler

from ._pace import pause

__all__ = ["configure_space", "plugin"]


def configure_space(event: FlatfileEvent, tick: Tick) -> None:
    """Create the space's workbooks (simulated) and report three steps."""
    tick(10, "Starting configuration...")
    pause()
    tick(50, "Halfway there!")
    pause()
    tick(100, "Configuration complete.")


plugin = job_handler("space:configure", configure_space)
