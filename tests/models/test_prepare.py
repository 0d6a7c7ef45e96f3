"""`restorium models prepare`: the weights nobody publishes are made once, from their published
parents, and made again only when their settings or photographs change."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from models.damage_training import DamageTrainSettings
from models.finetune import FinetuneSettings
from models.prepare import DAMAGE_MODEL, FIDELITY_MODEL, prepare
from models.weights import resolve

# A few steps on small crops: the real loading, training, registration and record, in seconds.
TINY_FIDELITY = replace(FinetuneSettings(), steps=2, batch=2, patch=64)
TINY_DAMAGE = replace(DamageTrainSettings(), steps=2, batch=2, patch=64)
BOTH = (FIDELITY_MODEL, DAMAGE_MODEL)  # the damage detector is made only when asked for


def test_made_once_then_kept_and_remade_when_the_settings_change(tmp_path: Path, shared_models: Path,
                                                                 shared_data: Path) -> None:
    photos = sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1:4]
    folder = tmp_path / "weights"
    threads = torch.get_num_threads()
    try:
        first = prepare(folder, photos, source=shared_models, only=BOTH, fidelity=TINY_FIDELITY, damage=TINY_DAMAGE)
    finally:
        torch.set_num_threads(threads)
    actions = {p.name: p.action for p in first}
    assert actions[FIDELITY_MODEL] == "made" and actions[DAMAGE_MODEL] == "made"
    assert actions["realesr-general-x4v3"] == "linked"  # the parent, read through a link
    assert (folder / "realesr-general-x4v3.pth").resolve() == (shared_models / "realesr-general-x4v3.pth").resolve()
    for made in (FIDELITY_MODEL, DAMAGE_MODEL):
        record = json.loads((folder / f"{made}.training.json").read_text())
        assert record["sha256"] == resolve(made, folder).sha256
        assert record["threads"] == 2 and record["precision"] in ("fp32", "bf16")  # what decides the bits

    again = prepare(folder, photos, source=shared_models, only=BOTH, fidelity=TINY_FIDELITY, damage=TINY_DAMAGE)
    assert {p.name: p.action for p in again} == {FIDELITY_MODEL: "kept", DAMAGE_MODEL: "kept"}
    kept_sha = {p.name: p.sha256 for p in again}

    other = prepare(folder, photos, source=shared_models, only=BOTH, fidelity=replace(TINY_FIDELITY, seed=1),
                    damage=TINY_DAMAGE)
    assert {p.name: p.action for p in other} == {FIDELITY_MODEL: "made", DAMAGE_MODEL: "kept"}
    assert next(p.sha256 for p in other if p.name == FIDELITY_MODEL) != kept_sha[FIDELITY_MODEL]

    fewer = prepare(folder, photos[:2], source=shared_models, only=[DAMAGE_MODEL], fidelity=TINY_FIDELITY,
                    damage=TINY_DAMAGE)
    assert [(p.name, p.action) for p in fewer] == [(DAMAGE_MODEL, "made")]  # other photographs: remade
