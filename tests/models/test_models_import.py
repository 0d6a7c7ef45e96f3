"""import_weights: a local file becomes a registered model only if it loads into its architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.weights import ImportWeightsError, import_weights, list_models, resolve


def test_import_round_trip_under_a_new_name(shared_models: Path, tmp_path: Path) -> None:
    src = shared_models / "realesr-animevideov3.pth"
    target = tmp_path / "models"
    imported = import_weights(src, "my-anime", target, like="realesr-animevideov3")
    assert imported.path == target.resolve() / "my-anime.pth"
    assert imported.card.architecture == "SRVGGNetCompact" and imported.card.scale == 4
    assert imported.card.url is None

    entry = json.loads((target / "registry.json").read_text())["models"]["my-anime"]
    assert entry["file"] == "my-anime.pth" and entry["sha256"] == imported.sha256
    assert entry["architecture"] == "SRVGGNetCompact" and entry["like"] == "realesr-animevideov3"

    again = resolve("my-anime", target)
    assert (again.sha256, again.card.arch_kwargs) == (imported.sha256, imported.card.arch_kwargs)
    rows = {row["name"]: row for row in list_models(target)}
    assert rows["my-anime"]["present"] and rows["my-anime"]["imported"]
    assert not rows["realesr-animevideov3"]["present"]

    # Importing the same bytes again is harmless.
    assert import_weights(src, "my-anime", target).sha256 == imported.sha256


def test_import_a_known_model(shared_models: Path, tmp_path: Path) -> None:
    src = shared_models / "ffdnet_color.pth"
    imported = import_weights(src, "ffdnet_color", tmp_path)
    assert imported.path.name == "ffdnet_color.pth" and imported.card.task == "denoise"
    assert resolve("ffdnet_color", tmp_path).sha256 == imported.sha256


def test_file_of_another_architecture_is_refused(shared_models: Path, tmp_path: Path) -> None:
    src = shared_models / "realesr-general-x4v3.pth"  # 32 convs; animevideov3 has 16
    with pytest.raises(ImportWeightsError) as err:
        import_weights(src, "not-anime", tmp_path, like="realesr-animevideov3")
    assert "realesr-general-x4v3.pth" in str(err.value) and "SRVGGNetCompact" in str(err.value)
    assert list(tmp_path.iterdir()) == [], "nothing copied, nothing registered"


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint" * 100)
    target = tmp_path / "models"
    with pytest.raises(ImportWeightsError, match="junk"):
        import_weights(junk, "ffdnet_color", target)
    assert not any(target.iterdir())


def test_new_name_needs_like(shared_models: Path, tmp_path: Path) -> None:
    src = shared_models / "ffdnet_color.pth"
    with pytest.raises(ImportWeightsError, match="--like"):
        import_weights(src, "my-denoiser", tmp_path)
    with pytest.raises(ImportWeightsError, match="letters, digits"):
        import_weights(src, "../escape", tmp_path, like="ffdnet_color")


def test_other_content_under_a_taken_name_needs_overwrite(shared_models: Path, tmp_path: Path) -> None:
    import_weights(shared_models / "realesr-animevideov3.pth", "mine", tmp_path, like="realesr-animevideov3")
    other = shared_models / "realesr-general-x4v3.pth"
    with pytest.raises(ImportWeightsError, match="overwrite"):
        import_weights(other, "mine", tmp_path, like="realesr-general-x4v3")
    replaced = import_weights(other, "mine", tmp_path, like="realesr-general-x4v3", overwrite=True)
    assert resolve("mine", tmp_path).card.arch_kwargs["num_conv"] == 32 == replaced.card.arch_kwargs["num_conv"]
