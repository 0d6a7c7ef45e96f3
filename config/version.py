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


@functools.cache
def git_dirty() -> bool:
    """True when tracked files differ from the commit (the code that ran is not exactly it)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.stdout.strip())


def software_details() -> dict[str, str]:
    """What identifies the running code beyond its version: the git commit when known (and
    whether the checkout had local changes). Recorded on the software agent; never in a key."""
    commit = git_commit()
    if not commit:
        return {}
    return {"git_commit": commit, **({"git_dirty": "yes"} if git_dirty() else {})}


def software_agent() -> str:
    return f"{SOFTWARE_NAME} {software_version()}"
