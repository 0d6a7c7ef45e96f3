"""Fidelity fine-tuning: degraded training pairs, a training loop that lowers the L1 loss on the real
realesr-general-x4v3 weights, and registration of the result with its training record."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.finetune import FinetuneSettings, degrade_patch, make_batch, train_and_register
from models.loading import build_network
from models.weights import import_weights, read_registry, resolve


@pytest.fixture
def photo_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1:3]


@pytest.fixture
def models_dir(shared_models: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    import_weights(shared_models / "realesr-general-x4v3.pth", "realesr-general-x4v3", target)
    return target


def _photo(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_degraded_pairs_are_seeded_and_area_downscaled(photo_files: list[Path]) -> None:
    hr = _photo(photo_files[0])[:128, :128]
    clean = degrade_patch(hr, 4, np.random.default_rng(0), FinetuneSettings(p_clean=1.0))
    assert np.array_equal(clean, cv2.resize(hr, (32, 32), interpolation=cv2.INTER_AREA))

    s = FinetuneSettings(p_clean=0.0, p_blur=1.0, p_noise=1.0, p_jpeg=1.0)
    one = degrade_patch(hr, 4, np.random.default_rng(7), s)
    assert one.shape == (32, 32, 3) and one.dtype == np.uint8
    assert np.array_equal(one, degrade_patch(hr, 4, np.random.default_rng(7), s))
    assert not np.array_equal(one, clean)

    photos = [_photo(p) for p in photo_files]
    x, y = make_batch(photos, 4, np.random.default_rng(1), FinetuneSettings(batch=3, patch=64))
    assert tuple(x.shape) == (3, 3, 16, 16) and tuple(y.shape) == (3, 3, 64, 64)
    assert 0.0 <= float(x.min()) and float(y.max()) <= 1.0


def test_fine_tuning_lowers_the_l1_loss_and_registers_the_weights(photo_files: list[Path], models_dir: Path) -> None:
    s = FinetuneSettings(steps=40, batch=4, patch=64, lr=5e-4, seed=3)
    photos = [_photo(p) for p in photo_files]
    held_out = make_batch(photos, 4, np.random.default_rng(99), FinetuneSettings(batch=8, patch=64))
    seen: list[int] = []

    got = train_and_register(photo_files, "realesr-general-x4v3", "fidelity-test", models_dir, s,
                             progress=lambda step, loss: seen.append(step))

    assert seen == list(range(1, 41))
    parent = resolve("realesr-general-x4v3", models_dir)
    assert resolve("fidelity-test", models_dir).sha256 == got.sha256 != parent.sha256
    entry = read_registry(models_dir.resolve())["models"]["fidelity-test"]
    assert entry["like"] == "realesr-general-x4v3" and entry["sha256"] == got.sha256

    with torch.inference_mode():
        losses = [torch.nn.functional.l1_loss(build_network(w.card, w.path)(held_out[0]), held_out[1]).item()
                  for w in (parent, got)]
    assert losses[1] < losses[0] * 0.97, losses  # the GAN weights' invented texture costs L1

    record = json.loads((got.path.parent / "fidelity-test.training.json").read_text())
    assert record["parent_sha256"] == parent.sha256 and record["sha256"] == got.sha256
    assert record["settings"]["steps"] == 40 and record["photographs"] == 2
    assert record["files"] == [str(p.resolve()) for p in photo_files]


def test_fine_tuning_refuses_what_it_cannot_train(photo_files: list[Path], models_dir: Path,
                                                  shared_models: Path) -> None:
    import_weights(shared_models / "ffdnet_color.pth", "ffdnet_color", models_dir)
    with pytest.raises(ValueError, match="compact"):
        train_and_register(photo_files, "ffdnet_color", "x", models_dir, FinetuneSettings(steps=1))
    with pytest.raises(ValueError, match="name of their own"):
        train_and_register(photo_files, "realesr-general-x4v3", "realesr-general-x4v3", models_dir,
                           FinetuneSettings(steps=1))
    with pytest.raises(ValueError, match="at least 4096 px"):
        train_and_register(photo_files, "realesr-general-x4v3", "x", models_dir, FinetuneSettings(steps=1, patch=4096))
    assert "x" not in read_registry(models_dir.resolve())["models"]
