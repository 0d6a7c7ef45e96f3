"""Which weights a run will use: the recipe's model, else its fallback, settled before any scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.recipe import load_recipe
from config.settings import Settings
from flows.models_setup import MissingModelError, resolve_recipe_models
from models.weights import import_weights


def test_a_missing_model_falls_back_only_when_the_recipe_says_so(tmp_path: Path, shared_models: Path) -> None:
    models_dir = tmp_path / "models"  # the published weights only, as on a fresh machine
    for name in ("realesr-general-x4v3", "ffdnet_color"):
        import_weights(shared_models / f"{name}.pth", name, models_dir)
    cfg = Settings(home=tmp_path / "archive", models_dir=models_dir)
    archival = load_recipe("archival")
    assert (archival.upscale.model, archival.upscale.fallback_model) == (
        "restorium-fidelity-x4v3", "realesr-general-x4v3")

    models = resolve_recipe_models(archival, cfg)

    assert models.upscale_models == ["realesr-general-x4v3"]
    assert set(models.weights) == {"realesr-general-x4v3", "ffdnet_color"}
    assert any("fallback, realesr-general-x4v3" in note for note in models.notes)

    strict = archival.model_copy(update={"upscale": archival.upscale.model_copy(update={"fallback_model": None})})
    with pytest.raises(MissingModelError, match="make it: restorium models finetune"):
        resolve_recipe_models(strict, cfg)


def test_present_weights_are_used_and_a_corrupt_file_never_falls_back(tmp_path: Path, shared_models: Path) -> None:
    models_dir = tmp_path / "models"
    import_weights(shared_models / "realesr-general-x4v3.pth", "realesr-general-x4v3", models_dir)
    # Any SRVGG x4 file of the right shape stands in for the fine-tuned weights here.
    tuned = import_weights(shared_models / "realesr-general-x4v3.pth", "restorium-fidelity-x4v3", models_dir)
    cfg = Settings(home=tmp_path / "archive", models_dir=models_dir)

    models = resolve_recipe_models(load_recipe("archival"), cfg)
    assert models.upscale_models == ["restorium-fidelity-x4v3"]
    assert not any("fallback" in note for note in models.notes)
    assert models.weights["restorium-fidelity-x4v3"] == tuned.sha256

    tuned.path.write_bytes(b"not weights")  # changed after import: refused, not replaced by the fallback
    with pytest.raises(Exception, match="restorium-fidelity-x4v3") as refused:
        resolve_recipe_models(load_recipe("archival"), cfg)
    assert not isinstance(refused.value, MissingModelError)


def test_the_learned_damage_detector_is_used_where_made_and_else_the_classical_one(
        tmp_path: Path, shared_models: Path) -> None:
    import torch

    from models.cards import CARDS
    from models.damage import DamageUNet

    models_dir = tmp_path / "models"
    for name in ("realesr-general-x4v3", "ffdnet_color"):
        import_weights(shared_models / f"{name}.pth", name, models_dir)
    cfg = Settings(home=tmp_path / "archive", models_dir=models_dir)
    preset = load_recipe("archival")
    assert preset.cleanup.detector is None  # the classical detector until a learned one beats it
    archival = preset.model_copy(update={"cleanup": preset.cleanup.model_copy(
        update={"detector": "restorium-damage-unet"})})

    missing = resolve_recipe_models(archival, cfg)
    assert missing.damage_detector is None and "restorium-damage-unet" not in missing.weights
    assert any("restorium-damage-unet weights are not in" in note and "classical detector" in note
               for note in missing.notes)

    torch.manual_seed(0)  # any network of the card's shape stands in for trained weights here
    net = DamageUNet(**CARDS["restorium-damage-unet"].arch_kwargs)
    torch.save({"params": net.state_dict()}, tmp_path / "damage.pth")
    made = import_weights(tmp_path / "damage.pth", "restorium-damage-unet", models_dir)
    present = resolve_recipe_models(archival, cfg)
    assert present.damage_detector == "restorium-damage-unet"
    assert present.weights["restorium-damage-unet"] == made.sha256  # in every master's derivation key
    off = archival.model_copy(update={"cleanup": archival.cleanup.model_copy(update={"auto": False})})
    assert resolve_recipe_models(off, cfg).damage_detector is None
