"""Finding, hashing, downloading and importing weights files.

A models folder holds weights files named as their cards say, plus `registry.json`:

    {"version": 1,
     "models": {NAME: {"file", "sha256", "architecture", "like", "source", "imported_at"}},
     "hashes": {ABS_PATH: {"size", "mtime_ns", "sha256"}}}

"models" lists imported files (new names, or local copies of known ones) with the sha256 taken at
import, so a file changed afterwards is refused rather than silently recorded as something else.
"hashes" caches sha256 by path+size+mtime so a 67 MB file is not re-hashed on every run. A folder
we cannot write (a shared read-only mirror) keeps its hash cache in the user cache folder instead.

Light on purpose: no torch here except inside import_weights' load check (and fetch's, for a card
without a published hash).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import http.client
import json
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

from models.architectures import spec_for
from models.cards import CARDS, ModelCard, UnknownModelError, get_card
from tasks.files.atomic import sha256_file

REGISTRY_FILE = "registry.json"
MODELS_DIR_ENV = "RESTORIUM_MODELS_DIR"
_CHUNK = 1 << 20
_FILE_MODE = 0o644  # mkstemp makes 0600; weights and registry are read by other users' workers
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_memo: dict[tuple[str, int, int], str] = {}  # in-process hash cache, for folders we cannot write


class WeightsError(Exception):
    """Base class: every problem with finding or trusting a weights file."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """The model's file is not in the models folder; the message lists the ways to get it."""

    # The message is the only positional argument so the error pickles (Ray sends it back from
    # actors); the details ride along as attributes. Not `.filename`: OSError formats that one.
    def __init__(self, message: str, *, name: str = "", models_dir: Path | None = None,
                 weights_file: str = "") -> None:
        super().__init__(message)
        self.name, self.models_dir, self.weights_file = name, models_dir, weights_file

    @classmethod
    def for_card(cls, card: ModelCard, models_dir: Path, filename: str) -> WeightsNotFoundError:
        where = str(models_dir) + ("" if models_dir.is_dir() else " (the folder does not exist)")
        if card.url:
            fetch = f"  - download it: restorium models fetch {card.name}   (from {card.url})"
        elif card.make_command:
            fetch = f"  - make it: {card.make_command}"
        else:
            fetch = "  - (no official download URL is known for this model: it must be imported)"
        return cls(
            f"model {card.name!r} needs the weights file {filename}, which is not in {where}. Fix one of:\n"
            f"  - set {MODELS_DIR_ENV} to a folder that holds {filename}\n"
            f"{fetch}\n"
            f"  - import a local copy: restorium models import PATH --name {card.name}",
            name=card.name, models_dir=models_dir, weights_file=filename,
        )


class WeightsIntegrityError(WeightsError):
    """An imported file whose bytes changed since it was registered."""


class FetchError(WeightsError):
    """A download that failed or did not verify; nothing is left in the models folder."""


class ImportWeightsError(WeightsError, ValueError):
    """A file refused by import_weights (unreadable, or not this architecture)."""


@dataclass(frozen=True)
class ResolvedWeights:
    """The file a model will be built from; `sha256` is of these bytes and is what provenance records."""

    card: ModelCard
    path: Path
    sha256: str

    @property
    def matches_published(self) -> bool | None:
        """True/False: the file is/is not the publisher's (card.sha256); None: no published hash."""
        return None if self.card.sha256 is None else self.sha256 == self.card.sha256


class ModelRow(TypedDict):
    """One row of list_models: a plain dict, so the CLI can print it as a table or JSON."""

    name: str
    task: str
    architecture: str
    scale: int
    licence: str
    url: str | None
    present: bool
    path: str | None
    sha256: str | None
    matches_published: bool | None  # None: not present, or no published hash to compare with
    imported: bool


# --- registry.json ---------------------------------------------------------------------------

def _registry_path(models_dir: Path) -> Path:
    return models_dir / REGISTRY_FILE


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable model registry ({exc}); fix or remove it") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: model registry is not a JSON object; fix or remove it")
    return data


def read_registry(models_dir: str | Path) -> dict[str, Any]:
    data = _read_json(_registry_path(Path(models_dir)))
    data.setdefault("version", 1)
    data.setdefault("models", {})
    data.setdefault("hashes", {})
    return data


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside `path`: several actors may hash or import at once."""
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _update_json(path: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Read-modify-write `path` under its lock, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = _read_json(path)
        mutate(data)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        _write_atomic(path, lambda fh: fh.write(text.encode()))


def writable_folder(folder: Path) -> bool:
    """Whether we may write into `folder`: permitted, and not marked read-only by its mode bits
    (root may write anywhere, but a dr-xr-xr-x shared mirror says "leave me alone")."""
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _hash_cache_file(models_dir: Path) -> Path:
    if writable_folder(models_dir):
        return _registry_path(models_dir)
    import platformdirs  # only when the models folder is read-only

    return platformdirs.user_cache_path("restorium") / "weights-sha256.json"


def cached_sha256(path: Path, models_dir: Path) -> str:
    """sha256 of `path`, cached by (absolute path, size, mtime): changing the file re-hashes it."""
    path = path.resolve()
    st = path.stat()
    key, memo_key = str(path), (str(path), st.st_size, st.st_mtime_ns)
    if memo_key in _memo:
        return _memo[memo_key]
    cache_file = _hash_cache_file(models_dir)
    with contextlib.suppress(WeightsError):
        entry = _read_json(cache_file).get("hashes", {}).get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            _memo[memo_key] = entry["sha256"]
            return entry["sha256"]
    digest = sha256_file(path)
    _memo[memo_key] = digest
    _remember_hash(cache_file, key, st.st_size, st.st_mtime_ns, digest)
    return digest


def _remember_hash(cache_file: Path, key: str, size: int, mtime_ns: int, digest: str) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data.setdefault("hashes", {})[key] = {"size": size, "mtime_ns": mtime_ns, "sha256": digest}

    # A cache we cannot write only costs a re-hash next time.
    with contextlib.suppress(OSError, WeightsError):
        _update_json(cache_file, mutate)


# --- resolving -------------------------------------------------------------------------------

def _card_for(name: str, registry: dict[str, Any]) -> ModelCard:
    """A built-in card, or the card of an imported model (its `like` card under the new name)."""
    if name in CARDS:
        return CARDS[name]
    entry = registry.get("models", {}).get(name)
    if entry is None:
        known = sorted(set(CARDS) | set(registry.get("models", {})))
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(known)} "
            "(or import your own: restorium models import PATH --name NAME --like KNOWN)"
        )
    base = get_card(entry["like"])
    return replace(
        base, name=name, filename=entry["file"], url=None, sha256=None,
        description=f"imported weights with the architecture of {base.name}",
    )


def resolve(name: str, models_dir: str | Path) -> ResolvedWeights:
    """The weights file for model `name` in `models_dir`, with its sha256."""
    models_dir = Path(models_dir).expanduser().resolve()
    registry = read_registry(models_dir) if models_dir.is_dir() else {"models": {}}
    card = _card_for(name, registry)
    entry = registry["models"].get(name)
    filename = entry["file"] if entry else card.filename
    path = models_dir / filename
    if not path.is_file():
        raise WeightsNotFoundError.for_card(card, models_dir, filename)
    digest = cached_sha256(path, models_dir)
    if entry and entry.get("sha256") and entry["sha256"] != digest:
        raise WeightsIntegrityError(
            f"{path}: sha256 is {digest} but {REGISTRY_FILE} recorded {entry['sha256']} when model "
            f"{name!r} was imported; the file changed since. Re-import it if the change is intended: "
            f"restorium models import PATH --name {name} --overwrite"
        )
    return ResolvedWeights(card=card, path=path, sha256=digest)


def list_models(models_dir: str | Path) -> list[ModelRow]:
    """Every known and imported model, and whether its file is in `models_dir`."""
    models_dir = Path(models_dir).expanduser().resolve()
    registry = read_registry(models_dir) if models_dir.is_dir() else {"models": {}}
    rows: list[ModelRow] = []
    for name in [*CARDS, *sorted(set(registry["models"]) - set(CARDS))]:
        card = _card_for(name, registry)
        entry = registry["models"].get(name)
        path = models_dir / (entry["file"] if entry else card.filename)
        present = path.is_file()
        digest = cached_sha256(path, models_dir) if present else None
        rows.append(ModelRow(
            name=name, task=card.task, architecture=card.architecture, scale=card.scale,
            licence=card.licence, url=card.url, present=present, path=str(path) if present else None,
            sha256=digest, matches_published=(digest == card.sha256) if digest and card.sha256 else None,
            imported=entry is not None,
        ))
    return rows


def _prepare_target(models_dir: Path, error: type[WeightsError]) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    if not writable_folder(models_dir):
        raise error(
            f"models folder {models_dir} is read-only; choose a writable one (--models-dir or "
            f"{MODELS_DIR_ENV})"
        )


@contextlib.contextmanager
def _part_file(models_dir: Path, filename: str) -> Iterator[tuple[int, Path]]:
    """An open temporary file beside `filename` in `models_dir` (its descriptor and path), removed
    on the way out unless it was moved into place."""
    fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{filename}.", suffix=".part")
    os.fchmod(fd, _FILE_MODE)
    tmp = Path(tmp_name)
    try:
        yield fd, tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _copy_hashing(read: Callable[[int], bytes], out: BinaryIO) -> tuple[str, int]:
    """Copy everything `read` gives into `out`, flushed to disk; the sha256 and size of the bytes."""
    digest_obj, size = hashlib.sha256(), 0
    while chunk := read(_CHUNK):
        out.write(chunk)
        digest_obj.update(chunk)
        size += len(chunk)
    out.flush()
    os.fsync(out.fileno())
    return digest_obj.hexdigest(), size


def _move_into_place(tmp: Path, dest: Path, models_dir: Path) -> None:
    os.replace(tmp, dest)
    _fsync_dir(models_dir)


# --- fetching --------------------------------------------------------------------------------

def _open_bounded(request: urllib.request.Request, timeout: float) -> Any:
    """urlopen with a hard bound: its `timeout` covers connect and reads but not DNS lookups,
    which can hang for long on a machine without a network."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["response"] = urllib.request.urlopen(request, timeout=timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="restorium-fetch-open", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["response"]


def fetch(
    name: str,
    models_dir: str | Path,
    timeout: float = 30,
    *,
    url: str | None = None,
    force: bool = False,
) -> ResolvedWeights:
    """Download model `name`'s official weights into `models_dir`, verified, atomically.

    `url` overrides the card's (an institution's mirror); the card's published sha256 is still
    checked. `timeout` bounds the connection and every read (seconds), so an offline machine fails
    fast with FetchError naming the URL and the reason. A file already present is kept when it is
    the published one (or nothing is published to compare with); a different file is replaced only
    with force=True.
    """
    card = get_card(name)
    source = url or card.url
    if not source:
        make = f"make it ({card.make_command}) or " if card.make_command else ""
        raise FetchError(
            f"model {name!r} has no official download URL; {make}import a local copy instead: "
            f"restorium models import PATH --name {name}"
        )
    models_dir = Path(models_dir).expanduser().resolve()
    dest = models_dir / card.filename
    if dest.is_file() and _keep_present_file(card, dest, models_dir, force=force):
        return resolve(name, models_dir)
    _prepare_target(models_dir, FetchError)

    with _part_file(models_dir, card.filename) as (fd, tmp):
        digest = _download(name, source, fd, timeout)
        _verify_download(card, source, digest, tmp)
        _move_into_place(tmp, dest, models_dir)
    if name in read_registry(models_dir)["models"]:  # a replaced import: the file is the published one now
        _update_json(_registry_path(models_dir), lambda data: data.get("models", {}).pop(name, None))
    return resolve(name, models_dir)


def _keep_present_file(card: ModelCard, dest: Path, models_dir: Path, *, force: bool) -> bool:
    """Whether the file already at `dest` is kept instead of downloaded again; a file that is not
    the published one is refused unless `force`."""
    digest = cached_sha256(dest, models_dir)
    if card.sha256 is None or digest == card.sha256:
        return True
    if not force:
        raise FetchError(
            f"{dest} already exists and is not the published file (sha256 {digest}, published "
            f"{card.sha256}); pass --force to replace it with the download"
        )
    return False


def _download(name: str, source: str, fd: int, timeout: float) -> str:
    """Write `source` into the file open as `fd` (closing it); the sha256 of the download."""
    request = urllib.request.Request(source, headers={"User-Agent": "restorium-models-fetch"})
    started = time.monotonic()
    try:
        with os.fdopen(fd, "wb") as fh, _open_bounded(request, timeout) as response:
            expected_size = int(response.headers.get("Content-Length") or 0) or None
            digest, size = _copy_hashing(response.read, fh)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
        raise _download_failed(name, source, exc, started) from exc
    if expected_size is not None and size != expected_size:
        raise FetchError(f"download of {source} is truncated: {size} of {expected_size} bytes")
    return digest


def _download_failed(name: str, source: str, exc: Exception, started: float) -> FetchError:
    reason: object = exc
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
    return FetchError(
        f"could not download model {name!r} from {source}: {reason} "
        f"(after {time.monotonic() - started:.1f} s). Offline? Download the file elsewhere and "
        f"run: restorium models import PATH --name {name}"
    )


def _verify_download(card: ModelCard, source: str, digest: str, tmp: Path) -> None:
    """Refuse a download that is not the published file, or (nothing published) does not load."""
    if card.sha256 is not None and digest != card.sha256:
        raise FetchError(
            f"download of {source} does not verify: sha256 {digest}, expected {card.sha256}; "
            "the file was discarded"
        )
    if card.sha256 is None:
        try:
            _check_loads(card, tmp, source)
        except ImportWeightsError as exc:
            raise FetchError(f"download of {source} is not usable: {exc}") from exc


# --- importing -------------------------------------------------------------------------------

def _check_loads(card: ModelCard, path: Path, shown_as: str | Path) -> None:
    """Refuse a file that does not load strictly into the card's architecture. `path` is our
    temporary copy; errors name `shown_as` (the file the user gave, or the URL)."""
    spec = spec_for(card)
    if spec.check_onnx is not None:  # ONNX for OpenCV, not a torch state dict
        try:
            spec.check_onnx(path)
        except ValueError as exc:
            raise ImportWeightsError(f"{shown_as}: {exc}") from exc.__cause__
        return
    from models.loading import WeightsLoadError, build_network  # torch (+ basicsr): only here

    try:
        build_network(card, path, device="cpu")
    except WeightsLoadError as exc:
        raise ImportWeightsError(str(exc).replace(str(path), str(shown_as))) from exc


def import_weights(
    path: str | Path,
    name: str,
    models_dir: str | Path,
    like: str | None = None,
    *,
    overwrite: bool = False,
) -> ResolvedWeights:
    """Copy a local weights file into `models_dir` as model `name` and register it.

    `name` is a known model (a local copy of its weights), or a new name with `like` naming the
    known model whose architecture the file has. The file must load strictly into that
    architecture; the copy is atomic and its sha256 goes to registry.json.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise ImportWeightsError(f"{src}: no such file to import")
    if not _NAME_RE.match(name):
        raise ImportWeightsError(f"model name {name!r}: use letters, digits, '.', '_' and '-' only")
    models_dir = Path(models_dir).expanduser().resolve()
    registry = read_registry(models_dir) if models_dir.is_dir() else {"models": {}}
    card, like = _card_to_import(name, like, registry, src)
    filename = card.filename

    _prepare_target(models_dir, ImportWeightsError)
    dest = models_dir / filename
    with _part_file(models_dir, filename) as (fd, tmp):
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            digest, _ = _copy_hashing(inp.read, out)
        if dest.exists() and not overwrite and cached_sha256(dest, models_dir) != digest:
            raise ImportWeightsError(
                f"{dest} already exists with other content; pass --overwrite to replace it"
            )
        _check_loads(card, tmp, src)  # the exact bytes that will be registered
        _move_into_place(tmp, dest, models_dir)

    _register_import(models_dir, name, card, like, digest, src)
    return resolve(name, models_dir)


def _card_to_import(name: str, like: str | None, registry: dict[str, Any],
                    src: Path) -> tuple[ModelCard, str | None]:
    """The card the imported file is checked against and registered under, and the known model
    whose architecture it has (None when `name` is itself a known model)."""
    if name in CARDS:
        if like is not None and like != name:
            raise ImportWeightsError(f"{name!r} is a known model: it has its own architecture, drop like={like!r}")
        return CARDS[name], None
    like = like or registry["models"].get(name, {}).get("like")
    if like is None:
        raise ImportWeightsError(
            f"{name!r} is a new model name: say which known model's architecture the file has "
            f"(--like, one of: {', '.join(sorted(CARDS))})"
        )
    if like not in CARDS:
        raise ImportWeightsError(f"--like {like!r} is not a known model (one of: {', '.join(sorted(CARDS))})")
    card = replace(CARDS[like], name=name, url=None, sha256=None)
    return replace(card, filename=f"{name}{src.suffix or '.pth'}"), like


def _register_import(models_dir: Path, name: str, card: ModelCard, like: str | None, digest: str,
                     src: Path) -> None:
    entry = {
        "file": card.filename, "sha256": digest, "architecture": card.architecture, "like": like,
        "source": str(src.resolve()),
        "imported_at": dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    _update_json(_registry_path(models_dir), lambda data: data.setdefault("models", {}).__setitem__(name, entry))
