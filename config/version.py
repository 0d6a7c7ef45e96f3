"""The software identity written into every event, master and idempotency key."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

SOFTWARE_NAME = "restorium"


@functools.cache
def software_version() -> str:
    """The installed package version (part of every master's idempotency key)."""
    try:
        return metadata.version(SOFTWARE_NAME)
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@functools.cache
def git_commit() -> str | None:
    """The source commit when running from a git checkout; recorded, never part of a key."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def software_agent() -> str:
    return f"{SOFTWARE_NAME} {software_version()}"
