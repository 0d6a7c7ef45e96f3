"""Resolving weights: the real files' hashes, the hash cache, and what a missing file says."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

import models.weights as weights
from models.weights import (
    WeightsError,
    WeightsIntegrityError,
    WeightsNotFoundError,
    list_models,
    read_registry,
    resolve,
)

# The sha256 of the development weights, as ../shared/models/MODELS.md lists them.
MODELS_MD_SHA256 = {
    "realesr-animevideov3": "4e1e09ba96d08bd4b8455e8897c3242a3501e3766f359941ea894122e158a932",
    "realesr-general-x4v3": "abfdb8b42866ea77a7b30091d8ef0134179a0cf5418315b1d2ccb861317d4952",
    "RealESRGAN_x4plus": "086cb22a3e5b7727080a43be34a4b953085bf801c6938834dea72adfd7ce028d",
    "ffdnet_color": "e64296c846ea34e68df2dd4d80b916dd422f3a31fc441da669913266a24bf14f",
}


@pytest.mark.parametrize("name", list(MODELS_MD_SHA256))
def test_resolve_shared_weights(shared_models: Path, name: str) -> None:
    resolved = resolve(name, shared_models)
    assert resolved.path == (shared_models / resolved.card.filename).resolve()
    assert resolved.sha256 == MODELS_MD_SHA256[name]
    # The shared copies are conversions/re-saves: provenance records their own hash, and says so.
    if resolved.card.sha256 is not None:
        assert resolved.matches_published is False


def test_hash_is_cached_by_path_size_and_mtime(shared_models: Path, tmp_path: Path, monkeypatch) -> None:
    src = shared_models / "ffdnet_color.pth"
    shutil.copy(src, tmp_path / "ffdnet_color.pth")
    first = resolve("ffdnet_color", tmp_path)
    entry = read_registry(tmp_path)["hashes"][str(first.path)]
    assert entry["sha256"] == first.sha256

    weights._memo.clear()  # a new process: only registry.json remembers
    monkeypatch.setattr(weights, "sha256_file", lambda p: pytest.fail("re-hashed an unchanged file"))
    assert resolve("ffdnet_color", tmp_path).sha256 == first.sha256

    with open(first.path, "ab") as fh:  # a changed file (size and mtime) is hashed again
        fh.write(b"\0")
    monkeypatch.setattr(weights, "sha256_file", lambda p: "f" * 64)
    assert resolve("ffdnet_color", tmp_path).sha256 == "f" * 64


def test_read_only_folder_is_left_alone(tmp_path: Path, shared_models: Path) -> None:
    """A read-only mirror (even one root could write) gets no registry: the hash cache goes to
    the user cache folder, and fetch/import refuse to write there."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(shared_models / "ffdnet_color.pth", mirror)
    mirror.chmod(0o555)
    try:
        resolved = resolve("ffdnet_color", mirror)
        assert sorted(p.name for p in mirror.iterdir()) == ["ffdnet_color.pth"]
        cache = Path(os.environ["XDG_CACHE_HOME"]) / "restorium" / "weights-sha256.json"
        assert str(resolved.path) in cache.read_text()
        with pytest.raises(WeightsError, match="read-only"):
            weights.import_weights(shared_models / "ffdnet_color.pth", "ffdnet_copy", mirror, like="ffdnet_color")
    finally:
        mirror.chmod(0o755)


def test_resolving_shared_weights_writes_nothing_there(shared_models: Path) -> None:
    before = sorted(p.name for p in shared_models.iterdir())
    for name in MODELS_MD_SHA256:
        resolve(name, shared_models)
    if not weights.writable_folder(shared_models):
        assert sorted(p.name for p in shared_models.iterdir()) == before


def test_not_found_message_names_model_folder_and_fixes(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        resolve("realesr-general-x4v3", tmp_path)
    message = str(err.value)
    assert "'realesr-general-x4v3'" in message and "realesr-general-x4v3.pth" in message
    assert str(tmp_path.resolve()) in message
    assert "RESTORIUM_MODELS_DIR" in message
    assert "restorium models fetch realesr-general-x4v3" in message
    assert "restorium models import PATH --name realesr-general-x4v3" in message
    assert isinstance(err.value, FileNotFoundError)
    copy = pickle.loads(pickle.dumps(err.value))  # Ray sends actor errors back pickled
    assert str(copy) == message and copy.name == "realesr-general-x4v3" and copy.models_dir == tmp_path.resolve()


def test_not_found_without_url_says_import(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        resolve("ffdnet_color", tmp_path / "absent")
    message = str(err.value)
    assert "models fetch" not in message
    assert "no official download URL" in message and "does not exist" in message
    assert "restorium models import PATH --name ffdnet_color" in message


def test_list_models(shared_models: Path, tmp_path: Path) -> None:
    rows = {row["name"]: row for row in list_models(shared_models)}
    assert rows["realesr-general-x4v3"]["present"] and rows["realesr-general-x4v3"]["sha256"] == MODELS_MD_SHA256["realesr-general-x4v3"]
    assert not rows["RealESRGAN_x2plus"]["present"] and rows["RealESRGAN_x2plus"]["path"] is None
    assert rows["RealESRGAN_x2plus"]["url"] and rows["RealESRGAN_x2plus"]["scale"] == 2
    assert not any(row["present"] for row in list_models(tmp_path))


def test_tampered_import_is_refused(shared_models: Path, tmp_path: Path) -> None:
    """A registered file whose bytes change is not silently recorded as the imported one."""
    src = shared_models / "ffdnet_color.pth"
    imported = weights.import_weights(src, "ffdnet_color", tmp_path)
    with open(imported.path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(WeightsIntegrityError, match="changed since"):
        resolve("ffdnet_color", tmp_path)


def test_list_models_rows_are_json(shared_models: Path) -> None:
    import json

    rows = json.loads(json.dumps(list_models(shared_models)))  # what `restorium models list --json` prints
    general = next(row for row in rows if row["name"] == "realesr-general-x4v3")
    assert general["matches_published"] is False and general["imported"] is False
