"""Atomic file writes and streaming hashes.

A derived file is filled under a hidden temporary name in its final folder, flushed to disk and
renamed over the final name, before the catalog row that points at it is committed, so a crash
never leaves a half-written master under a name the catalog could believe in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

_CHUNK = 1 << 20  # 1 MiB


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (masters can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class CopyVerifyError(ValueError):
    """A catalogued file that is missing, or whose bytes are no longer the ones catalogued."""


def copy_verified(source: Path, target: Path, sha256: str, role: str, *, copy_times: bool = True) -> None:
    """Copy a catalogued file while hashing it (one read, for exports of gigabyte masters); refuse
    a file that is missing or differs from its catalogued sha256."""
    if not source.is_file():
        raise CopyVerifyError(f"{role} {source}: missing (the catalog records it, sha256 {sha256}); "
                              "restore it from a replica first")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    if copy_times:
        shutil.copystat(source, target)
    if digest.hexdigest() != sha256:
        raise CopyVerifyError(f"{role} {source}: sha256 is {digest.hexdigest()}, the catalog recorded {sha256}; "
                              "the file changed since it was catalogued (run `restorium fixity`)")


def temp_path_for(path: Path) -> Path:
    """The temporary sibling of `path`: hidden ('.') and '.partial', so scanners and ingest skip it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Create `path` through `write(temp_path)`, then fsync and rename it into place.

    `write` gets an empty file in the same folder (same filesystem, so the rename is atomic) and
    may rewrite or edit it freely (e.g. tifffile, then pyexiv2). On any exception the temporary
    file is removed and the exception re-raised; the final name is then untouched.
    """
    final = Path(path)
    if not final.parent.is_dir():
        raise FileNotFoundError(f"{final}: cannot write, folder {final.parent} does not exist")
    temp = temp_path_for(final)
    # O_EXCL: never clobber a concurrent writer's temp; mode 0o666 lets the umask decide the
    # permissions (mkstemp would leave masters readable by their owner only).
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(temp)
        _fsync_path(temp)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_dir(final.parent)  # make the rename itself durable


def _fsync_path(path: Path) -> None:
    # `write` may have replaced the file (new inode), so sync by path, not by an fd we held.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms without directory fds: the rename is as durable as we can make it
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
