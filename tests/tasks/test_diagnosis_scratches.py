"""Scratch lines and their mask against the true mask of drawn scratches; thin straight things
that belong to the scene (rails, rims, lattices, bricks, a pipe's highlight) are not scratches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from tasks import samples
from tasks.diagnosis.noise import noise_sigma
from tasks.diagnosis.scratches import assess_scratches
from tasks.diagnosis.views import Views
from tasks.imageio import DecodedImage, decode


def _scratches(pixels: np.ndarray, *, noise_aware: bool = False) -> tuple[dict, np.ndarray | None]:
    depth = 16 if pixels.dtype == np.uint16 else 8
    views = Views(DecodedImage(pixels, None, depth, None, None))
    return assess_scratches(views, noise_sigma(views) if noise_aware else 0.0)


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels


def _textured(seed: int = 0, size: int = 400) -> np.ndarray:
    """A mid-grey 8-bit 'photo' with soft isotropic texture (no lines of its own)."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3)
    img = 0.45 + 0.08 * texture / texture.std()
    return np.clip(np.rint(np.dstack([img] * 3) * 255), 0, 255).astype(np.uint8)


def test_clean_photo_has_no_scratch_lines(clean):
    assert _scratches(clean)[0]["count"] == 0


def test_drawn_scratches_are_found_and_masked(clean):
    _, scene = _scratches(clean)  # the photo's own isolated specks, which the mask also holds
    scene = scene if scene is not None else np.zeros(clean.shape[:2], bool)
    recalls = []
    for seed in range(4):
        scratched, truth = samples.scratch_and_dust(clean, 3, 0, seed=seed)
        finding, mask = _scratches(scratched)
        assert finding["count"] >= 1
        assert mask is not None and mask.dtype == bool and mask.shape == truth.shape
        assert finding["coverage"] == pytest.approx(mask.mean(), abs=1e-4)
        recalls.append((mask & truth).sum() / truth.sum())
        near = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        added = mask & ~scene
        assert (added & near).sum() / added.sum() > 0.5  # what the scratches added lies on them
    assert np.mean(recalls) > 0.4  # and covers much of them (lines over bright areas fade out)


def test_the_demo_scans_scratches_are_masked_along_their_length():
    # The demo's scans (blurred, grainy, 256-512 px): a line first fitted to part of a scratch is
    # traced again to its ends (before: mean 0.66 of the drawn scratches covered, astronaut 0.43).
    from flows.demo_scans import DEMO_SEEDS

    recalls = []
    for name, photo in samples.demo_photographs().items():
        spec = samples.Degradation(jpeg_quality=None)
        scan, _ = samples.degrade_with_mask(photo, spec, DEMO_SEEDS[name])
        _, drawn = samples.degrade_with_mask(photo, samples.Degradation(jpeg_quality=None, dust=0), DEMO_SEEDS[name])
        finding, mask = _scratches(scan, noise_aware=True)
        assert finding["count"] >= 2, name
        recalls.append((mask & drawn).sum() / drawn.sum())
    assert np.mean(recalls) > 0.7 and min(recalls) > 0.5, recalls


def test_large_16bit_scan_gets_a_full_resolution_mask(clean):
    # 2000 x 2000 (analysed at 1536) with 2 px scratches drawn at full resolution
    big = cv2.resize(clean, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    truth = np.zeros(big.shape[:2], np.uint8)
    for x0, x1 in ((400, 520), (1500, 1420)):
        cv2.line(big, (x0, 100), (x1, 1900), (240, 240, 240), 2)
        cv2.line(truth, (x0, 100), (x1, 1900), 1, 2)
    finding, mask = _scratches(big.astype(np.uint16) * 257)
    assert finding["count"] >= 1
    assert mask.shape == (2000, 2000) and mask.dtype == bool
    assert (mask & (truth > 0)).sum() / truth.sum() > 0.3  # both lines, partly: they fade over white


def test_a_scratch_crossing_texture_is_found_whole():
    # a 1 px light line over textured gravel: texture ridges touch it and break it into short
    # bits; tracing the ridge points along it recovers the whole line
    gravel = skdata.gravel()
    img = np.dstack([gravel] * 3).copy()
    truth = np.zeros(gravel.shape, np.uint8)
    cv2.line(img, (200, 40), (240, 470), (235, 235, 235), 1, cv2.LINE_AA)
    cv2.line(truth, (200, 40), (240, 470), 1, 1)
    finding, mask = _scratches(img, noise_aware=True)
    assert finding["count"] == 1
    assert (mask & (truth > 0)).sum() / truth.sum() > 0.8


def test_a_line_that_belongs_to_an_object_is_not_a_scratch():
    # the same light line, once as a scratch over the texture, once as the highlight of a pipe
    # between its dark outlines, once along the middle of a light plank (a rail, a window frame):
    # the object's own edges run beside it
    scratched = _textured()
    cv2.line(scratched, (200, 30), (200, 370), (220, 220, 220), 1)
    assert _scratches(scratched)[0]["count"] == 1

    pipe = _textured()
    for x in (197, 203):
        cv2.line(pipe, (x, 30), (x, 370), (50, 50, 50), 1)
    cv2.line(pipe, (200, 30), (200, 370), (220, 220, 220), 1)
    assert _scratches(pipe)[0]["count"] == 0

    plank = _textured().astype(np.int32)
    plank[30:370, 194:207] += 80
    plank = np.clip(plank, 0, 255).astype(np.uint8)
    cv2.line(plank, (200, 30), (200, 370), (230, 230, 230), 1)
    assert _scratches(plank)[0]["count"] == 0


def test_a_family_of_parallel_lines_is_not_a_scratch():
    # a grille or lattice: light bars every 15 px; one bar alone would be a scratch
    lone = _textured(1)
    cv2.line(lone, (200, 30), (210, 370), (220, 220, 220), 1)
    assert _scratches(lone)[0]["count"] == 1
    grille = _textured(1)
    for x in range(110, 300, 15):
        cv2.line(grille, (x, 30), (x + 10, 370), (220, 220, 220), 1)
    assert _scratches(grille)[0]["count"] == 0


def test_dark_lines_are_not_scratches():
    # scratches on prints show the paper's white; a thin dark straight line is a wire or a frame
    wired = _textured(2)
    cv2.line(wired, (60, 30), (340, 370), (20, 20, 20), 1)
    assert _scratches(wired)[0]["count"] == 0


@pytest.mark.parametrize("name", ["brick", "camera", "edge_cases/OST_009.png", "real_noisy/RNI15/Glass.png"])
def test_thin_straight_things_in_photos_are_not_scratches(shared_data, name):
    # brick courses, a tripod's leg, a drainpipe's highlight, a glass's rims: once false alarms
    if "/" in name:
        pixels = decode(shared_data / name, max_pixels=10**9).pixels
    else:
        pixels = getattr(skdata, name)()
    assert _scratches(pixels, noise_aware=True)[0]["count"] == 0


def test_a_real_scratched_print_has_its_long_crack_found(shared_data):
    # a real scan with a crack network: the long straight crack down its left side is found
    image = decode(shared_data / "old_photos/old_w_scratch/b.png", max_pixels=10**9)
    views = Views(image)
    finding, mask = assess_scratches(views, noise_sigma(views))
    assert finding["count"] >= 1
    gray = cv2.cvtColor(image.pixels[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32)
    # the masked pixels are the light ones (the crack), not their surroundings
    assert np.median(gray[mask]) > np.median(gray[cv2.dilate(mask.astype(np.uint8), np.ones((9, 9))) > mask])
