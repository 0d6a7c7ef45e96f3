"""The per-scan boundary: whatever goes wrong with one file becomes a failure of that file.

Decoders written in C and Python raise anything on hostile input (OSError, ValueError,
struct.error, zlib.error, cv2.error, MemoryError, Pillow's DecompressionBombError, warnings
turned into errors). Every piece of per-scan work runs inside `scan_boundary`, which turns any
Exception into a ScanError with a kind and a reason; BaseExceptions that are not Exceptions
(KeyboardInterrupt, SystemExit) still stop the run, as they should.
"""

from __future__ import annotations

import errno
import logging
import threading
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
DISK_FULL = "disk-full"  # writing the master found no space: the run stops, the next one resumes
KINDS = (INVALID, UNSUPPORTED, TOO_LARGE, UNREADABLE, MEMORY, DISK_FULL)
TRANSIENT = (UNREADABLE, MEMORY, DISK_FULL)  # not a property of the bytes: the next run tries again

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


def is_disk_full(exc: BaseException) -> bool:
    """By errno, not by the message's text (a locale or a wrapper can change that); an error
    raised while handling one (a writer's own exception around the OSError) counts too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _is_bomb(exc: BaseException) -> bool:
    try:
        from PIL.Image import DecompressionBombError
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(exc, DecompressionBombError)


class _TiffLog(logging.Filter):
    """What tifffile logs about a file while a thread works inside a boundary goes to that scan's
    notes, not the console. One filter for the process, state per thread: workers run several
    scans at once on threads."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        messages = getattr(self.local, "messages", None)
        if messages is None or record.levelno < logging.WARNING:
            return True
        if len(messages) < 20:  # a hostile file can make a decoder complain without end
            messages.append(record.getMessage())
        return False


_TIFF_LOG = _TiffLog()
_TIFF_LOGGER = logging.getLogger("tifffile")


def _listen_to_tifffile() -> None:
    """(Re)attach the filter: a logging configuration loaded since this module was imported (a
    library's dictConfig/fileConfig) may have disabled the logger or replaced its filters; the
    full test suite met that, the tasks tests alone did not."""
    _TIFF_LOGGER.disabled = False
    if _TIFF_LOGGER.getEffectiveLevel() > logging.WARNING:  # a level set elsewhere would hide them
        _TIFF_LOGGER.setLevel(logging.WARNING)
    if _TIFF_LOG not in _TIFF_LOGGER.filters:
        _TIFF_LOGGER.addFilter(_TIFF_LOG)


_listen_to_tifffile()


@contextmanager
def scan_boundary(path: str | Path, notes: list[str] | None = None, what: str = "") -> Iterator[None]:
    """Run one file's work; any Exception leaves as that file's ScanError.

    What tifffile logs about malformed tags, and (on the main thread, where the warnings module's
    global state may be swapped safely) warnings such as Pillow's "Corrupt EXIF data", do not stop
    the scan: they are kept in `notes`, so the summary and the catalog say what the decoder noticed."""
    _listen_to_tifffile()
    outer = getattr(_TIFF_LOG.local, "messages", None)
    logged: list[str] = []
    _TIFF_LOG.local.messages = logged
    capture = warnings.catch_warnings(record=True) if threading.current_thread() is threading.main_thread() else None
    caught = capture.__enter__() if capture else []
    try:
        if capture:
            warnings.simplefilter("always")
        yield
    except Exception as exc:  # this is the boundary: nothing may escape it
        raise failure_of(path, exc, what) from exc
    finally:
        if capture:
            capture.__exit__(None, None, None)
        _TIFF_LOG.local.messages = outer
        if outer is not None:
            outer.extend(logged)
        if notes is not None:
            found = [f"decoder warning: {w.category.__name__}: {w.message}" for w in caught]
            for note in found + [f"tifffile: {m}" for m in logged]:
                if note not in notes:
                    notes.append(note)
