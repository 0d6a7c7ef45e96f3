"""QA findings move the right way on real photographs with known degradations, and the report
is plain JSON with a reason per problem."""

from __future__ import annotations

import json

import cv2
import numpy as np

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.assessment import assess


def _image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, alpha=None, bit_depth=8, icc=None, ppi=None)


def test_noise_estimate_tracks_added_noise(shared_data):
    clean = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    rng = np.random.default_rng(0)
    sigmas = []
    for added in (0, 5, 15, 30):
        noisy = np.clip(clean + rng.normal(0, added, clean.shape), 0, 255).astype(np.uint8)
        sigmas.append(assess(_image(noisy)).findings["noise_sigma"])
    assert sigmas == sorted(sigmas) and sigmas[0] < 2.0
    assert 11.25 < sigmas[2] < 18.75  # per-channel sigma of 15, within 25 %
    report = assess(_image(np.clip(clean + rng.normal(0, 30, clean.shape), 0, 255).astype(np.uint8)))
    assert report.verdict == "warn" and any(r.startswith("noisy: sigma") for r in report.reasons)
    assert "noisy" in report.problems


def test_blur_lowers_sharpness_and_warns_with_its_type(shared_data):
    clean = decode(shared_data / "sr_gt/McMaster/8.tif", max_pixels=10**9).pixels
    sharp = assess(_image(clean))
    blurred = assess(_image(cv2.GaussianBlur(clean, (0, 0), 3)))
    assert sharp.verdict == "pass" and sharp.reasons == []
    assert sharp.findings["blur"]["type"] == "none"
    assert blurred.findings["sharpness"] < sharp.findings["sharpness"] / 50
    assert blurred.findings["blur"]["type"] == "defocus"
    assert any(r.startswith("defocus blur: sigma") for r in blurred.reasons)
    assert blurred.problems >= {"defocus_blur"} and "motion_blur" not in blurred.problems
    moved = assess(_image(samples.motion_blur(clean, 15, 32)))
    assert any(r.startswith("motion blur: ") and r.endswith("°") for r in moved.reasons)
    assert "motion_blur" in moved.problems


def test_16bit_and_grayscale_are_measured_on_the_same_scale(shared_data):
    rgb = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    f8 = assess(_image(gray)).findings
    f16 = assess(DecodedImage(gray.astype(np.uint16) * 257, None, 16, None, None)).findings
    assert abs(f8["noise_sigma"] - f16["noise_sigma"]) < 0.05
    assert abs(f8["sharpness"] - f16["sharpness"]) / f8["sharpness"] < 0.01
    for key in ("blur", "scratches", "clipping", "color_cast", "skew_deg", "phash"):
        assert f8[key] == f16[key], key
    assert abs(f8["contrast"] - f16["contrast"]) < 0.01
    assert f8["color_cast"] == {"a": 0.0, "b": 0.0, "magnitude": 0.0, "chroma_residual": 0.0, "spread": 0.0}


def test_report_is_plain_json_with_the_documented_shape(shared_data):
    clean = decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    old_scan = samples.degrade(clean, seed=1)  # blur, fade, warm cast, grain, JPEG, scratches, dust
    report = assess(_image(old_scan))
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)  # no NaN/inf, no numpy types
    assert json.loads(text) == data
    assert set(data) == {"verdict", "reasons", "findings"}  # the mask and the flags stay out
    f = data["findings"]
    assert set(f) == {"blur", "sharpness", "noise_sigma", "scratches", "jpeg_blockiness", "clipping",
                      "contrast", "color_cast", "skew_deg", "phash"}
    assert set(f["blur"]) == {"type", "score", "sigma_px", "angle_deg", "length_px"}
    assert set(f["scratches"]) == {"count", "coverage", "dust_count", "opaque_specks", "dust_standing_out"}
    assert len(f["clipping"]["black"]) == len(f["clipping"]["white"]) == 3
    assert set(f["color_cast"]) == {"a", "b", "magnitude", "chroma_residual", "spread"}
    assert len(f["phash"]) == 16
    assert report.verdict == "warn" and report.reasons
    if report.scratch_mask is not None:
        assert report.scratch_mask.shape == old_scan.shape[:2] and report.scratch_mask.dtype == bool


def test_each_degradation_gets_its_reason(shared_data):
    clean = decode(shared_data / "sr_gt/McMaster/8.tif", max_pixels=10**9).pixels
    cases = {
        ("JPEG blocking", "jpeg_blocking"): samples.jpeg_roundtrip(clean, 12),
        ("faded: contrast", "faded"): samples.fade(clean, 0.6),
        ("skewed: ", "skewed"): samples.skewed_scan(clean, 2.0, bed=0.15),
        ("scratches: ", "scratches"): samples.scratch_and_dust(clean, 3, 0, seed=3)[0],
        # dust alone, no scratch: on smooth glass, where it stands out (on 8's texture 25 specks do not)
        ("dust: ", "dust"): samples.scratch_and_dust(decode(shared_data / "sr_gt/McMaster/1.tif").pixels, 0, 25,
                                                     seed=3)[0],
    }
    for (prefix, flag), pixels in cases.items():
        report = assess(_image(pixels))
        assert any(r.startswith(prefix) for r in report.reasons), (prefix, report.reasons)
        assert flag in report.problems
        if flag in ("scratches", "dust"):
            assert report.scratch_mask is not None and report.scratch_mask.any()
    mid_tones = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    gray_print = cv2.cvtColor(cv2.cvtColor(mid_tones, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    report = assess(_image(samples.colour_cast(gray_print, 0.06)))
    assert any(r.startswith("colour cast: Δab") and "toward" in r for r in report.reasons), report.reasons
    assert "color_cast" in report.problems


def test_tiny_and_flat_images_do_not_break_the_report():
    for pixels in (np.zeros((1, 1, 3), np.uint8), np.full((40, 30), 200, np.uint8),
                   np.full((9, 9, 3), 65535, np.uint16)):
        depth = 16 if pixels.dtype == np.uint16 else 8
        report = assess(DecodedImage(pixels, None, depth, None, None))
        assert report.verdict in ("pass", "warn", "fail") and report.findings
        assert json.loads(json.dumps(report.to_dict(), allow_nan=False)) == report.to_dict()  # no NaN/inf


def test_the_learned_detectors_mask_is_added_to_the_classical_one(shared_data):
    clean = decode(shared_data / "sr_gt/McMaster/8.tif", max_pixels=10**9).pixels
    scratched = _image(samples.scratch_and_dust(clean, 3, 0, seed=3)[0])
    classical = assess(scratched)
    assert "scratches" in classical.problems and classical.scratch_mask is not None
    assert classical.speck_mask is not None and classical.speck_mask.any()

    report = {"damaged": True, "lines": 2, "specks": 5, "coverage": 0.0123, "threshold": 0.8,
              "seed_threshold": 0.995, "min_area": 16, "views": 8, "model": "restorium-damage-unet",
              "weights_sha256": "ab" * 32, "seconds": 0.4, "inference_seconds": 0.3}
    mask = np.zeros(clean.shape[:2], bool)
    mask[10:20, 30] = True  # a mark the classical detector missed ...
    ys, xs = np.nonzero(classical.speck_mask)
    mask[ys[0], xs[0]] = True  # ... and a pixel of a speck it fills as found
    learned = assess(scratched, (mask, report))
    assert learned.scratch_mask is not None and learned.speck_mask is not None
    np.testing.assert_array_equal(learned.scratch_mask, classical.scratch_mask | mask)
    # The classical specks are still filled as found, except where the learned mask (grown whole) covers them.
    np.testing.assert_array_equal(learned.speck_mask, classical.speck_mask & ~mask)
    assert {"scratches", "dust"} <= learned.problems
    assert [r for r in classical.reasons if r.startswith("scratches")][0] in learned.reasons
    assert "scratches: 2 lines (1.23 % of pixels, restorium-damage-unet)" in learned.reasons
    assert "dust: 5 specks" in learned.reasons
    # The classical finding stays on record beside it; timings are no finding (same scan, same findings).
    assert learned.findings["scratches"] == classical.findings["scratches"]
    assert "seconds" not in learned.findings["damage"] and learned.findings["damage"]["views"] == 8
    json.dumps(learned.to_dict())

    # Nothing learned: the classical mask and findings alone, as without the learned detector.
    nothing = assess(scratched, (np.zeros(clean.shape[:2], bool), {**report, "damaged": False, "lines": 0,
                                                                   "specks": 0, "coverage": 0.0}))
    assert nothing.problems == classical.problems and nothing.reasons == classical.reasons
    np.testing.assert_array_equal(nothing.scratch_mask, classical.scratch_mask)
    untouched = assess(_image(clean), (np.zeros(clean.shape[:2], bool), {**report, "damaged": False, "lines": 0,
                                                                         "specks": 0, "coverage": 0.0}))
    assert not {"scratches", "dust"} & untouched.problems and untouched.scratch_mask is None
