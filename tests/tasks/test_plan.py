from __future__ import annotations

import pytest

from config.recipe import load_recipe
from tasks.steps.plan import plan_scan, target_size

ARCHIVAL = load_recipe("archival")


@pytest.mark.parametrize(
    ("scale", "long_edge", "size", "expected"),
    [
        (2.0, None, (301, 199), (602, 398)),
        (3.0, None, (100, 50), (300, 150)),
        (None, 3840, (1200, 800), (3840, 2560)),
        (None, 3840, (800, 1201), (2558, 3840)),
    ],
)
def test_target_size_is_exact(scale, long_edge, size, expected):
    recipe = ARCHIVAL.with_target(scale=scale, long_edge=long_edge)
    assert target_size(*size, recipe)[:2] == expected


def test_model_passes_are_minimal():
    x2 = plan_scan(ARCHIVAL, {"noise_sigma": 0}, 100, 100, model_scale=4, denoiser_available=True)
    assert (x2.model_passes, x2.target_width) == (1, 200)
    x8 = plan_scan(ARCHIVAL.with_target(scale=8), {}, 100, 100, model_scale=4, denoiser_available=True)
    assert x8.model_passes == 2
    same = plan_scan(ARCHIVAL.with_target(long_edge=100), {}, 100, 80, model_scale=4, denoiser_available=True)
    assert same.model_passes == 0 and same.upscale_model is None
    with pytest.raises(ValueError, match="passes"):
        plan_scan(ARCHIVAL.with_target(scale=16), {}, 10, 10, model_scale=2, denoiser_available=True)


def test_the_plan_names_the_upscaler_the_run_loaded():
    tuned = plan_scan(ARCHIVAL, {}, 100, 100, model_scale=4, denoiser_available=True,
                      model_name="restorium-fidelity-x4v3")
    assert tuned.upscale_model == "restorium-fidelity-x4v3"
    assert not any("fallback" in r for r in tuned.reasons)
    fallback = plan_scan(ARCHIVAL, {}, 100, 100, model_scale=4, denoiser_available=True,
                         model_name="realesr-general-x4v3")
    assert fallback.upscale_model == "realesr-general-x4v3"
    assert "upscale: restorium-fidelity-x4v3 weights not available, using the recipe's fallback" in fallback.reasons
    assert fallback.resolved(ARCHIVAL)["upscale"]["model"] == "realesr-general-x4v3"


def test_grain_within_what_the_fidelity_model_was_trained_on_is_left_to_it():
    # restorium-fidelity-x4v3 learnt to remove grain up to sigma 15; FFDNet first only smooths texture
    fidelity = {"model_scale": 4, "denoiser_available": True, "model_name": "restorium-fidelity-x4v3",
                "model_training": "fidelity"}
    left = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 64, **fidelity)
    assert left.denoise_method == "off"
    assert any(r.startswith("denoise: skipped") and "trained for fidelity" in r for r in left.reasons)
    assert left.grain_left_to_model == 10.0  # the fidelity guard takes it out of its reference
    heavy = plan_scan(ARCHIVAL, {"noise_sigma": 20.0}, 64, 64, **fidelity)
    assert (heavy.denoise_method, heavy.denoise_sigma) == ("ffdnet", 15.0)
    gan = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 64, **{**fidelity, "model_training": "gan"})
    assert (gan.denoise_method, gan.denoise_sigma) == ("ffdnet", 8.0)
    no_model = plan_scan(ARCHIVAL.with_target(scale=1), {"noise_sigma": 10.0}, 64, 64, **fidelity)
    assert no_model.denoise_method == "ffdnet"  # no model pass runs to remove it
    assert heavy.grain_left_to_model == gan.grain_left_to_model == no_model.grain_left_to_model == 0.0


def test_the_likeness_blend_brings_back_less_of_a_grainy_scan():
    # The blend returns the scan's grain with its detail; the fidelity model removed that grain.
    fidelity = {"model_scale": 4, "denoiser_available": True, "model_name": "restorium-fidelity-x4v3",
                "model_training": "fidelity"}
    full = ARCHIVAL.finish.fidelity_model_blend
    blends = {sigma: plan_scan(ARCHIVAL, {"noise_sigma": sigma}, 64, 64, **fidelity).finish["fidelity_blend"]
              for sigma in (0.5, 2.0, 6.0, 10.0, 25.0)}
    assert blends == pytest.approx({0.5: full, 2.0: full, 6.0: 0.75 * full, 10.0: 0.5 * full, 25.0: 0.5 * full}), blends
    grainy = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 64, **fidelity)
    assert any(r.startswith("fidelity blend: 0.1 (not 0.3)") and "lightened for noise sigma 10.0" in r
               for r in grainy.reasons), grainy.reasons


def test_denoise_strength_follows_measured_noise():
    quiet = plan_scan(ARCHIVAL, {"noise_sigma": 1.0}, 64, 64, model_scale=4, denoiser_available=True)
    assert quiet.denoise_method == "off" and any(r.startswith("denoise: skipped") for r in quiet.reasons)
    grainy = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 64, model_scale=4, denoiser_available=True)
    assert (grainy.denoise_method, grainy.denoise_sigma) == ("ffdnet", 8.0)
    very = plan_scan(ARCHIVAL, {"noise_sigma": 40.0}, 64, 64, model_scale=4, denoiser_available=True)
    assert very.denoise_sigma == ARCHIVAL.denoise.max_sigma
    fallback = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 64, model_scale=4, denoiser_available=False)
    assert fallback.denoise_method == "nlmeans" and any("not available" in r for r in fallback.reasons)


def test_resolved_recipe_records_every_value_used():
    plan = plan_scan(ARCHIVAL, {"noise_sigma": 10.0}, 64, 48, model_scale=4, denoiser_available=True)
    resolved = plan.resolved(ARCHIVAL)
    assert resolved["hash"] == ARCHIVAL.hash
    assert resolved["denoise"] == {"method": "ffdnet", "sigma": 8.0}
    assert (resolved["upscale"]["width"], resolved["upscale"]["height"]) == (128, 96)
    assert resolved["finish"]["fidelity_blend"] == ARCHIVAL.finish.fidelity_blend


FADED_CAST = {"noise_sigma": 6.0, "contrast": 0.35, "color_cast": {"a": 2.0, "b": 9.0, "magnitude": 9.2},
              "scratches": {"count": 3, "coverage": 0.004, "dust_count": 0},
              "blur": {"type": "motion", "score": 4.0, "sigma_px": None, "angle_deg": 30.0, "length_px": 12.0}}
ALL_PROBLEMS = {"faded", "color_cast", "scratches", "motion_blur"}


def test_each_step_acts_only_on_what_qa_found():
    nothing = plan_scan(ARCHIVAL, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True)
    assert (nothing.levels, nothing.white_balance, nothing.inpaint, nothing.deblur) == (None, None, None, None)
    plan = plan_scan(ARCHIVAL, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True,
                     problems=ALL_PROBLEMS, has_mask=True)
    assert plan.levels["strength"] == ARCHIVAL.tone.levels_strength
    assert plan.white_balance == {"method": "grey-edge", "strength": ARCHIVAL.tone.white_balance_strength}
    assert plan.inpaint["method"] == ARCHIVAL.cleanup.method == "spline"
    assert plan.deblur["blur"]["type"] == "motion" and plan.deblur["strength"] == ARCHIVAL.deblur.strength
    # deconvolution is told the noise left after denoising: sqrt(6^2 - 4.8^2) = 3.6
    assert plan.deblur["noise_sigma"] == pytest.approx(3.6, abs=0.01)
    reasons = " ".join(plan.reasons)
    for word in ("levels", "white balance", "cleanup", "deblur", "denoise", "upscale"):
        assert word in reasons
    no_mask = plan_scan(ARCHIVAL, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True,
                        problems=ALL_PROBLEMS, has_mask=False)
    assert no_mask.inpaint is None  # nothing to inpaint without a mask


def test_a_jpeg_with_its_colour_at_half_resolution_has_the_colour_filled_further():
    plain = plan_scan(ARCHIVAL, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True,
                      problems=ALL_PROBLEMS, has_mask=True)
    assert plain.inpaint["chroma_dilate"] == plain.inpaint["dilate"] == ARCHIVAL.cleanup.dilate
    jpeg = plan_scan(ARCHIVAL, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True,
                     problems=ALL_PROBLEMS, has_mask=True, chroma_subsampled=True)
    assert jpeg.inpaint["chroma_dilate"] == ARCHIVAL.cleanup.dilate + 1
    assert any("the colour 1 px further" in r for r in jpeg.reasons)


def test_archival_faithful_keeps_tone_and_colour_as_scanned():
    faithful = load_recipe("archival-faithful")
    plan = plan_scan(faithful, FADED_CAST, 64, 64, model_scale=4, denoiser_available=True,
                     problems=ALL_PROBLEMS, has_mask=True)
    assert plan.levels is None and plan.white_balance is None and plan.clahe is None
    assert any("kept as scanned" in r for r in plan.reasons)
    assert plan.inpaint is not None  # dust and scratches are not tone: still cleaned


def test_faces_need_the_recipe_and_the_detector():
    portrait = load_recipe("portrait")
    assert plan_scan(ARCHIVAL, {}, 64, 64, model_scale=4, denoiser_available=True,
                     face_detector_available=True).faces is None
    assert plan_scan(portrait, {}, 64, 64, model_scale=4, denoiser_available=True,
                     face_detector_available=False).faces is None
    plan = plan_scan(portrait, {}, 64, 64, model_scale=4, denoiser_available=True, face_detector_available=True)
    assert plan.faces == {"score_threshold": 0.8, "ai_share": 0.4}


def test_mild_defocus_is_left_to_the_model_but_not_without_one():
    mild = {"blur": {"type": "defocus", "score": 3.0, "sigma_px": 1.2, "angle_deg": None, "length_px": None}}
    upscaled = plan_scan(ARCHIVAL, mild, 64, 64, model_scale=4, denoiser_available=True, problems={"defocus_blur"})
    assert upscaled.deblur is None and any("restores itself" in r for r in upscaled.reasons)
    same_size = ARCHIVAL.with_target(long_edge=64)
    kept = plan_scan(same_size, mild, 64, 64, model_scale=4, denoiser_available=True, problems={"defocus_blur"})
    assert kept.deblur is not None  # no model pass follows: deconvolution is the only help
    assert kept.deblur["blur"]["sigma_px"] == 1.2
    strong = {"blur": {**mild["blur"], "sigma_px": 3.5}}
    deblurred = plan_scan(ARCHIVAL, strong, 64, 64, model_scale=4, denoiser_available=True, problems={"defocus_blur"})
    # only the part of the blur the model does not restore itself (in quadrature: sqrt(3.5² - 2²))
    assert deblurred.deblur["blur"]["sigma_px"] == pytest.approx(2.872, abs=1e-3)
    assert deblurred.deblur["blur"]["measured_sigma_px"] == 3.5
    assert any("2.9 px beyond what" in r for r in deblurred.reasons), deblurred.reasons


def test_tone_strength_grows_with_how_clearly_the_problem_was_measured():
    """A borderline fade or cast (a low-contrast or warm photograph) gets a light touch; a clear
    one the preset's strength."""
    clear = {**FADED_CAST, "contrast": 0.30, "color_cast": {"a": 2.0, "b": 9.0, "magnitude": 9.2, "spread": 0.5}}
    borderline = {**FADED_CAST, "contrast": 0.48,  # Δab 29.4 / (3.4 x spread 8.3) = 1.04: just reported
                  "color_cast": {"a": 9.0, "b": 28.0, "magnitude": 29.4, "spread": 8.3}}
    tone = ARCHIVAL.tone
    full = plan_scan(ARCHIVAL, clear, 64, 64, model_scale=4, denoiser_available=True, problems={"faded", "color_cast"})
    assert full.levels["strength"] == tone.levels_strength
    assert full.white_balance["strength"] == tone.white_balance_strength
    light = plan_scan(ARCHIVAL, borderline, 64, 64, model_scale=4, denoiser_available=True,
                      problems={"faded", "color_cast"})
    assert light.levels["strength"] == pytest.approx(tone.levels_strength * 0.02 / 0.15, abs=1e-3)
    assert 0 < light.white_balance["strength"] < 0.1 * tone.white_balance_strength
    assert "borderline fade" in " ".join(light.reasons) and "borderline cast" in " ".join(light.reasons)


def test_a_fidelity_trained_model_is_not_pulled_back_onto_the_scan():
    soft = {"noise_sigma": 0.5, "blur": {"type": "defocus", "score": 2.0, "sigma_px": 1.2}}
    kwargs = dict(model_scale=4, denoiser_available=True, problems={"defocus_blur"})
    tuned = plan_scan(ARCHIVAL, soft, 100, 80, model_name="restorium-fidelity-x4v3", model_training="fidelity",
                      **kwargs)
    assert tuned.finish["consistency"] == 0.0 and tuned.finish["color_transfer"] == 0.0
    # the likeness blend stays, lighter: this model invents less texture to tame
    assert tuned.finish["fidelity_blend"] == ARCHIVAL.finish.fidelity_model_blend < ARCHIVAL.finish.fidelity_blend
    assert any(r.startswith("fidelity blend: 0.2 (not 0.3)") for r in tuned.reasons)
    assert any(r.startswith("colour transfer and consistency: skipped, restorium-fidelity-x4v3 is trained for "
                            "fidelity") for r in tuned.reasons)
    # The GAN-trained fallback is still pulled back, through the blur it was left to undo.
    gan = plan_scan(ARCHIVAL, soft, 100, 80, model_name="realesr-general-x4v3", model_training="gan", **kwargs)
    assert gan.finish["consistency"] == ARCHIVAL.finish.consistency
    assert gan.finish["consistency_blur"]["sigma_px"] == 1.2
    assert gan.finish["fidelity_blend"] == ARCHIVAL.finish.fidelity_blend
    # A recipe recorded before the setting existed keeps doing what it did, whatever the model.
    legacy = ARCHIVAL.model_copy(update={"finish": ARCHIVAL.finish.model_copy(update={"gan_corrections_only": False})})
    old = plan_scan(legacy, soft, 100, 80, model_name="restorium-fidelity-x4v3", model_training="fidelity", **kwargs)
    assert old.finish["consistency"] == ARCHIVAL.finish.consistency
    unset = ARCHIVAL.model_copy(update={"finish": ARCHIVAL.finish.model_copy(update={"fidelity_model_blend": None})})
    assert plan_scan(unset, soft, 100, 80, model_name="restorium-fidelity-x4v3", model_training="fidelity",
                     **kwargs).finish["fidelity_blend"] == ARCHIVAL.finish.fidelity_blend


def test_consistency_is_skipped_on_jpeg_blocking_and_follows_an_undeconvolved_blur():
    clean = plan_scan(ARCHIVAL, {"noise_sigma": 0.5}, 100, 80, model_scale=4, denoiser_available=True)
    assert clean.finish["consistency"] == ARCHIVAL.finish.consistency > 0
    assert clean.finish["consistency_blur"] is None
    blocky = plan_scan(ARCHIVAL, {"noise_sigma": 0.5}, 100, 80, model_scale=4, denoiser_available=True,
                       problems={"jpeg_blocking"})
    assert blocky.finish["consistency"] == 0.0
    assert any(r.startswith("consistency: skipped, JPEG blocking") for r in blocky.reasons)
    # Full consistency does the colour transfer's work locally; without it the transfer stays.
    assert clean.finish["color_transfer"] == 0.0 and blocky.finish["color_transfer"] == ARCHIVAL.finish.color_transfer
    # Mild defocus is left to the model, so the master must match the scan through that blur.
    soft = {"noise_sigma": 0.5, "blur": {"type": "defocus", "score": 2.0, "sigma_px": 1.2}}
    mild = plan_scan(ARCHIVAL, soft, 100, 80, model_scale=4, denoiser_available=True, problems={"defocus_blur"})
    assert mild.deblur is None and mild.finish["consistency_blur"]["sigma_px"] == 1.2
    # A deconvolved scan is sharp already: matched as it is.
    moving = plan_scan(ARCHIVAL, FADED_CAST, 100, 80, model_scale=4, denoiser_available=True, problems={"motion_blur"})
    assert moving.deblur is not None and moving.finish["consistency_blur"] is None
    # No model pass, nothing invented: nothing to put back.
    kept = plan_scan(ARCHIVAL.with_target(long_edge=100), {}, 100, 80, model_scale=4, denoiser_available=True)
    assert kept.finish["consistency"] == 0.0


def test_a_toned_print_keeps_its_tone_unless_the_recipe_asks():
    sepia = {"noise_sigma": 1.0, "contrast": 0.8,
             "color_cast": {"a": 6.0, "b": 18.0, "magnitude": 19.0, "spread": 3.0, "chroma_residual": 1.2}}
    kept = plan_scan(ARCHIVAL, sepia, 100, 80, model_scale=4, denoiser_available=True, problems={"color_cast"})
    assert kept.white_balance is None
    assert any(r.startswith("white balance: skipped, a toned monochrome print") for r in kept.reasons)
    neutralise = ARCHIVAL.model_copy(update={"tone": ARCHIVAL.tone.model_copy(update={"keep_toned": False})})
    grey = plan_scan(neutralise, sepia, 100, 80, model_scale=4, denoiser_available=True, problems={"color_cast"})
    assert grey.white_balance and grey.white_balance["strength"] > 0
    colourful = {**sepia, "color_cast": {**sepia["color_cast"], "chroma_residual": 12.0}}
    cast = plan_scan(ARCHIVAL, colourful, 100, 80, model_scale=4, denoiser_available=True, problems={"color_cast"})
    assert cast.white_balance is not None


def test_the_model_output_is_reduced_only_as_far_as_the_target_allows() -> None:
    from tasks.steps.upscale import output_reduction

    assert output_reduction(100, 150, 4, 300, 200) == 2  # x4 model, x2 target: block mean of 2
    assert output_reduction(100, 150, 4, 150, 100) == 4  # x1 target (cleanup only): down to x1
    assert output_reduction(100, 150, 4, 301, 200) == 1  # just over x2: the full x4 output is needed
    assert output_reduction(100, 150, 4, 600, 400) == 1
    assert output_reduction(100, 150, 2, 300, 200) == 1  # an x2 model at x2
    assert output_reduction(100, 150, 3, 150, 100) == 3


def test_only_small_scans_are_averaged_over_their_flips_and_rotations() -> None:
    limit = ARCHIVAL.upscale.self_ensemble_max_pixels
    assert limit > 0
    side = int(limit**0.5)
    small = plan_scan(ARCHIVAL, {}, side, limit // side, model_scale=4, denoiser_available=True)
    assert small.ensemble_views == 8
    assert small.resolved(ARCHIVAL)["upscale"]["ensemble_views"] == 8
    assert any("8 flips and rotations" in r for r in small.reasons)
    large = plan_scan(ARCHIVAL, {}, side + 1, limit // side, model_scale=4, denoiser_available=True)
    assert large.ensemble_views == 1 and "ensemble_views" not in large.resolved(ARCHIVAL)["upscale"]
    # a recipe from before it existed never averages, and keeps its hash
    legacy = ARCHIVAL.model_copy(update={"upscale": ARCHIVAL.upscale.model_copy(update={"self_ensemble_max_pixels": 0})})
    assert plan_scan(legacy, {}, 8, 8, model_scale=4, denoiser_available=True).ensemble_views == 1
    assert '"self_ensemble_max_pixels"' not in legacy.canonical_json()
    assert '"self_ensemble_max_pixels":65536' in ARCHIVAL.canonical_json()
