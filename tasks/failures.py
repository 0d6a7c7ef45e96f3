"""The per-scan boundary: whatever goes wrong with one file becomes a failure of that file.

Decoders written in C and Python raise anything on hostile input (OSError, ValueError,
struct.error, zlib.error, cv2.error, MemoryError, Pillow's DecompressionBombError, warnings
turned into errors). Every piece of per-scan work runs inside `scan_boundary`, which turns any
Exception into a ScanError with a kind and a reason; BaseExceptions that are not Exceptions
(KeyboardInterrupt, SystemExit) still stop the run, as they should.
"""

from __future__ import annotations

import errno
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What a failed scan is, for people and for retries:
INVALID = "invalid"  # damaged or not a scan at all: the same bytes fail again
UNSUPPORTED = "unsupported"  # a real image of a kind we do not master (GIF, float samples…)
TOO_LARGE = "too-large"  # over the pixel or decoded-byte limit (raise the limit if genuine)
UNREADABLE = "unreadable"  # the file system refused it (permissions, I/O error): may pass later
MEMORY = "memory"  # ran out of memory on this scan: may pass on a bigger machine or later
KINDS = (INVALID, UNSUPPORTED, TOO_LARGE, UNREADABLE, MEMORY)
TRANSIENT = (UNREADABLE, MEMORY)  # not a property of the bytes: the next run tries again

_IO_ERRNOS = {errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.EISDIR, errno.ELOOP,
              errno.ENXIO, errno.ESTALE, errno.ETIMEDOUT}


class ScanError(ValueError):
    """A file that cannot be a scan: the message names the file, the kind and the reason."""

    def __init__(self, path: str | Path, reason: str, kind: str = INVALID):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.kind = kind


def failure_of(path: str | Path, exc: BaseException, what: str = "") -> ScanError:
    """Any exception raised while working on one file, as that file's ScanError."""
    if isinstance(exc, ScanError):
        return exc
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    prefix = f"{what}: " if what else ""
    if isinstance(exc, MemoryError):
        return ScanError(path, f"{prefix}out of memory ({detail})", MEMORY)
    if _is_bomb(exc):
        return ScanError(path, f"{prefix}over the decoder's pixel limit ({detail})", TOO_LARGE)
    if isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
        return ScanError(path, f"{prefix}cannot read the file ({exc.strerror or detail})", UNREADABLE)
    if isinstance(exc, Warning):
        return ScanError(path, f"{prefix}decoder warning raised as an error ({detail})", INVALID)
    return ScanError(path, f"{prefix}damaged or malformed file ({detail})", INVALID)


def _is_bomb(exc: BaseException) -> bool:
    try:
        from PIL.Image import DecompressionBombError
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(exc, DecompressionBombError)


@contextmanager
def scan_boundary(path: str | Path, notes: list[str] | None = None, what: str = "") -> Iterator[None]:
    """Run one file's work; any Exception leaves as that file's ScanError.

    Warnings raised inside (Pillow's "Corrupt EXIF data", "Truncated File Read"…) do not stop the
    scan: they are kept in `notes`, so the summary and the catalog say what the decoder noticed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - this is the boundary: nothing may escape it
            raise failure_of(path, exc, what) from exc
        finally:
            if notes is not None:
                for w in caught:
                    note = f"decoder warning: {w.category.__name__}: {w.message}"
                    if note not in notes:
                        notes.append(note)
