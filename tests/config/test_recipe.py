from __future__ import annotations

import json

import pytest

from config.recipe import Recipe, RecipeError, list_presets, load_recipe
from config.settings import Settings


def test_archival_preset_is_valid_and_hash_is_stable():
    first, second = load_recipe("archival"), load_recipe("archival")
    assert "archival" in list_presets()
    assert first.hash == second.hash and len(first.hash) == 64
    # the canonical form has sorted keys and no whitespace, and drops the prose description
    text = first.canonical_json()
    data = json.loads(text)
    assert list(data) == sorted(data) and ": " not in text and ", " not in text
    assert "description" not in data and data["name"] == "archival"
    assert first.model_copy(update={"description": "other words"}).hash == first.hash


def test_overrides_change_the_hash_and_are_validated():
    base = load_recipe("archival")
    x3 = base.with_target(scale=3)
    k4 = base.with_target(long_edge=3840)
    assert len({base.hash, x3.hash, k4.hash}) == 3
    assert (k4.upscale.scale, k4.upscale.long_edge) == (None, 3840)
    with pytest.raises(ValueError):
        base.with_target(scale=2, long_edge=100)
    with pytest.raises(ValueError):
        base.with_target(scale=-1)


def test_bad_recipes_say_what_is_wrong(tmp_path):
    with pytest.raises(RecipeError, match="no recipe preset named 'nope'"):
        load_recipe("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndenoise:\n  sigma: loud\n")
    with pytest.raises(RecipeError, match="invalid recipe"):
        load_recipe(str(bad))
    with pytest.raises(ValueError):
        Recipe(name="x", upscale={"scale": None, "long_edge": None})


def test_settings_from_environment_and_file(tmp_path, monkeypatch):
    config = tmp_path / "restorium.yaml"
    config.write_text(f"home: {tmp_path / 'from-file'}\nshard_size: 7\n")
    monkeypatch.setenv("RESTORIUM_CONFIG", str(config))
    monkeypatch.setenv("RESTORIUM_SHARD_SIZE", "9")
    cfg = Settings()
    assert cfg.home == tmp_path / "from-file"  # from the file
    assert cfg.shard_size == 9  # the environment wins over the file
    assert cfg.resolved_catalog_url == f"sqlite:///{tmp_path / 'from-file' / 'catalog.sqlite'}"
    monkeypatch.setenv("RESTORIUM_SHARD_SIZE", "0")
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_with_its_own_name(name):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.description
    assert recipe.upscale.model  # every preset upscales with a named model


def test_presets_cover_the_documented_set_and_differ():
    names = set(list_presets())
    assert {"archival", "archival-faithful", "portrait", "document", "landscape"} <= names
    assert len({load_recipe(n).hash for n in names}) == len(names)
    assert load_recipe("archival-faithful").tone.auto is False  # tone and colour kept as scanned
    assert load_recipe("portrait").faces.enabled is True


def test_fields_added_later_leave_recorded_recipes_their_hash_and_meaning():
    from config.recipe import ADDED_LATER, Recipe, load_recipe

    archival = load_recipe("archival")
    # The archival preset as it was recorded before consistency and keep_toned existed (commit a57114b).
    recorded = archival.model_dump(mode="json")
    recorded["finish"].update(consistency=0.0, fidelity_blend=0.4, gan_corrections_only=False,
                              fidelity_model_blend=None)
    recorded["tone"].update(keep_toned=False)
    recorded["upscale"].update(model="realesr-general-x4v3", fallback_model=None, self_ensemble_max_pixels=0)
    recorded["cleanup"].update(detector=None, method="telea")
    recorded["denoise"].update(fidelity_model_min_sigma=None)
    assert Recipe.model_validate(recorded).hash == "359d7a2defe08d75a8c0da1524e4ac991aab9bad7e2db3a3a1b8482848fb5cd7"
    for section, key in ADDED_LATER:
        del recorded[section][key]  # a stored recipe dict from then lacks the fields: same hash, same steps
    old = Recipe.model_validate(recorded)
    assert old.hash == "359d7a2defe08d75a8c0da1524e4ac991aab9bad7e2db3a3a1b8482848fb5cd7"
    assert (old.finish.consistency, old.tone.keep_toned, old.upscale.fallback_model,
            old.finish.gan_corrections_only) == (0.0, False, None, False)
    # Every preset turns them on, and a value other than the legacy one is hashed.
    assert archival.finish.consistency == 1.0 and archival.tone.keep_toned
    assert archival.hash != old.hash and '"consistency":1.0' in archival.canonical_json()
    assert '"fallback_model":"realesr-general-x4v3"' in archival.canonical_json()
    assert archival.finish.gan_corrections_only and '"gan_corrections_only":true' in archival.canonical_json()
    assert old.finish.fidelity_model_blend is None and '"fidelity_model_blend":0.2' in archival.canonical_json()
    assert old.cleanup.detector is None and archival.cleanup.detector is None
    assert old.cleanup.method == "telea" and '"method":"spline"' in archival.canonical_json()
    assert old.denoise.fidelity_model_min_sigma is None and '"fidelity_model_min_sigma":15.0' in archival.canonical_json()
