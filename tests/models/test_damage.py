"""The learned damage detector (models.damage): tiled output equals untiled output, hysteresis keeps
what a person would, and training is reproducible bit for bit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from models.cards import CARDS
from models.damage import DamageDetector, DamageUNet
from models.damage_training import DamageTrainSettings, train_damage_detector
from models.weights import import_weights
from tasks.demo import damage

NAME = "restorium-damage-unet"


@pytest.fixture()
def detector(tmp_path: Path) -> DamageDetector:
    torch.manual_seed(0)  # a seeded random network of the card's shape: the real loading and tiling
    net = DamageUNet(**CARDS[NAME].arch_kwargs)
    for module in net.modules():  # running statistics away from 0 / 1, so BatchNorm's eval path counts
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    torch.save({"params": net.state_dict()}, tmp_path / "damage.pth")
    return DamageDetector(import_weights(tmp_path / "damage.pth", NAME, tmp_path / "models"), precision="fp32")


def test_tiles_see_their_whole_context_so_tiled_output_is_the_untiled_output(detector, shared_data):
    photo = np.asarray(Image.open(sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[0]).convert("RGB"))
    rgb = np.ascontiguousarray(photo[:200, :300]).astype(np.float32) / 255
    whole = detector.probability(rgb, tile=0)
    tiled = detector.probability(rgb, tile=64)
    assert whole.shape == rgb.shape[:2]
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_eight_views_give_a_turned_or_mirrored_scan_the_same_answer_turned_or_mirrored(detector, shared_data):
    photo = np.asarray(Image.open(sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[0]).convert("RGB"))
    rgb = np.ascontiguousarray(photo[:96, :128]).astype(np.float32) / 255  # sides a multiple of 4: no padding
    assert detector.views == 8  # the default

    def turned(a: np.ndarray, k: int, mirror: bool) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(a[:, ::-1] if mirror else a, k))

    def drift(views: int) -> float:
        detector.views = views
        p = detector.probability(rgb, tile=0)
        return max(float(np.abs(detector.probability(turned(rgb, k, m), tile=0) - turned(p, k, m)).max())
                   for k in range(4) for m in (False, True))

    assert drift(8) < 1e-5
    assert drift(1) > 1e-4  # one view: a network is not equivariant by itself (so the check above can fail)
    with pytest.raises(ValueError, match="views"):
        DamageDetector(detector.weights, views=3)


def test_hysteresis_keeps_components_that_reach_the_seed_and_drops_faint_or_tiny_ones(detector):
    detector.threshold, detector.seed_threshold, detector.min_area = 0.5, 0.85, 2  # looser than the defaults
    prob = np.zeros((40, 60), np.float32)
    prob[5, 5:40] = 0.6  # a scratch, faint along most of it ...
    prob[5, 20] = 0.9  # ... found where it is clear: all of it is kept
    prob[20, 5:40] = 0.7  # faint everywhere: an isolated weak response, dropped
    prob[30, 50] = 0.95  # one pixel: under min_area, dropped
    prob[30:33, 10:13] = 0.9  # a speck
    mask, specks, lines = detector._components(prob)
    assert mask[5, 5:40].all() and not mask[20].any() and not mask[30, 50]
    assert mask[30:33, 10:13].all() and (specks, lines) == (1, 1)


def test_the_same_photographs_and_seed_train_the_same_bytes(tmp_path: Path, shared_data: Path) -> None:
    photos = sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[1:3]
    tiny = replace(DamageTrainSettings(), steps=3, batch=2, patch=64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = train_damage_detector(photos, NAME, tmp_path / "a", tiny)
        second = train_damage_detector(photos, NAME, tmp_path / "b", tiny)
        other = train_damage_detector(photos, NAME, tmp_path / "c", replace(tiny, seed=1))
    finally:
        torch.set_num_threads(threads)
    assert first.sha256 == second.sha256 != other.sha256


def test_drawn_damage_comes_with_its_true_mask() -> None:
    clean = np.full((96, 96, 3), 0.5, np.float32)
    img = clean.copy()
    truth = damage.draw_damage(img, np.random.default_rng(3), damage.MIXED)
    assert truth.any() and truth.mean() < 0.2
    # What shows (over 20 levels) lies in the mask or on its 1 px rim (a soft mark's faint edge)
    shows = np.abs(img - clean).max(axis=2) > 20 / 255
    rim = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert shows.any() and not (shows & ~rim).any()
    assert (truth & shows).sum() > 0.5 * truth.sum()  # and most of the mask shows
