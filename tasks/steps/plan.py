"""The planner: the recipe as it will be applied to one scan, with a reason for each choice.

Pure function of (recipe, QA findings and the problems QA flagged, scan size, available
models): the same scan and recipe always give the same plan, which is what makes the recipe
hash a sound idempotency key. Diagnose first, then act only on what was found: levels only for
a faded scan, white balance only for a measured cast, inpainting only inside a detected mask,
deblurring only for the blur type diagnosed, denoising in proportion to the measured noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict, cast

from config.recipe import Recipe
from tasks.qa.diagnosis.specks import CHROMA_REACH
from tasks.qa.diagnosis.tone import CAST_DELTA_AB, CAST_SPREAD_RATIO, FADED_CONTRAST, is_toned_print
from tasks.steps.upscale import ENSEMBLE_VIEWS

# The denoiser model the recipe's "ffdnet" method uses.
FFDNET_MODEL = "ffdnet_color"
FACE_MODEL = "face_detection_yunet"
MAX_MODEL_PASSES = 2
# Defocus (Gaussian sigma, scan pixels) the Real-ESRGAN models undo on their own; measured with
# bench/quality.py (x4 + blur sigma 1: model alone 25.9 dB, Wiener first 24.4 dB).
MODEL_HANDLES_DEFOCUS_PX = 2.0

# Tone corrections grow with how clearly the problem was measured, instead of jumping to full
# strength at the reporting threshold: a borderline finding (a low-contrast or warm photograph
# that merely looks faded or cast) gets a light touch. bench/quality.py: on McMaster 13 blurred
# or JPEG-compressed, full-strength levels + white balance cost the x4+blur row 1.4 dB.
FADE_RAMP = 0.15  # contrast this far under the faded threshold → full levels strength
# The fidelity blend is halved at this measured noise, from none at the denoiser's min_sigma
# (bench/quality.py, 2026-12-07: SSIM +0.0009 on the 30 photos and +0.0012 on the validation ones,
# PSNR the same; a blend of 0.1 on every scan: SSIM +0.0013, but -0.01 dB)
BLEND_NOISE_HALF = 10.0
CAST_RAMP = 0.5  # cast this far over the reporting ratio (Δab / its gates) → full white balance

# Problem flags QA raises (tasks.qa.assessment.QAReport.problems) that the planner acts on.
FADED, CAST, SCRATCHES, DUST, MOTION_BLUR, DEFOCUS_BLUR, JPEG_BLOCKING = (
    "faded", "color_cast", "scratches", "dust", "motion_blur", "defocus_blur", "jpeg_blocking",
)


# Each step's typed parameters: keyword arguments of its function, exactly as recorded in the
# catalog and the master's XMP (plain dicts there, so a plan's JSON is what it always was).
class LevelsParams(TypedDict):  # tasks.steps.tone.levels
    black_clip: float
    white_clip: float
    strength: float


class ClaheParams(TypedDict):  # tasks.steps.tone.clahe_luminance
    clip_limit: float
    strength: float


class WhiteBalanceParams(TypedDict):  # tasks.steps.tone.white_balance
    method: str
    strength: float


class InpaintParams(TypedDict):  # tasks.steps.inpaint.inpaint (the mask comes from QA)
    method: Literal["spline", "biharmonic", "harmonic", "telea", "ns"]
    radius: int
    dilate: int
    chroma_dilate: int  # the colour's own growth: further on a chroma-subsampled JPEG (specks.CHROMA_REACH)


class DeblurParams(TypedDict):  # tasks.steps.deblur.deblur
    blur: dict[str, Any]  # the diagnosed blur (QA findings)
    strength: float
    noise_sigma: float  # left after denoising
    max_noise_gain: float


class FaceParams(TypedDict):  # face protection in the finish step
    score_threshold: float
    ai_share: float  # how much of the model's result is kept inside a face


class FinishParams(TypedDict):  # tasks.steps.finish, in the order applied
    color_transfer: float
    consistency: float
    consistency_blur: dict[str, Any] | None  # the scan's blur the consistency step reproduces
    fidelity_blend: float
    grain: float
    sharpen: float


@dataclass
class Plan:
    levels: LevelsParams | None = None  # when faded
    clahe: ClaheParams | None = None  # when faded and asked for
    white_balance: WhiteBalanceParams | None = None  # when a cast was measured
    inpaint: InpaintParams | None = None  # when dust or scratches were found and masked
    denoise_method: str = "off"  # ffdnet | nlmeans | off
    denoise_sigma: float = 0.0  # 0-255 scale
    grain_left_to_model: float = 0.0  # measured sigma when denoise is skipped for a fidelity model
    deblur: DeblurParams | None = None  # when motion or defocus blur was diagnosed
    upscale_model: str | None = None  # None: the scan is already at or above the target size
    model_passes: int = 0
    ensemble_views: int = 1  # 8: each model pass averaged over the scan's flips and rotations
    target_width: int = 0
    target_height: int = 0
    faces: FaceParams | None = None  # face protection: detector threshold, AI share inside faces
    finish: FinishParams = field(default_factory=lambda: cast(FinishParams, {}))  # set by plan_scan
    reasons: list[str] = field(default_factory=list)

    def resolved(self, recipe: Recipe) -> dict[str, Any]:
        """Every value used, recorded in the catalog and the master's XMP."""
        return {
            "name": recipe.name,
            "hash": recipe.hash,
            "seed": recipe.seed,
            "tone": {"levels": self.levels, "clahe": self.clahe, "white_balance": self.white_balance},
            "cleanup": {"inpaint": self.inpaint},
            "denoise": {"method": self.denoise_method, "sigma": self.denoise_sigma},
            "deblur": self.deblur,
            "upscale": {
                "model": self.upscale_model, "passes": self.model_passes,
                **({"ensemble_views": self.ensemble_views} if self.ensemble_views > 1 else {}),
                "width": self.target_width, "height": self.target_height,
                "tile": recipe.upscale.tile, "tile_overlap": recipe.upscale.tile_overlap,
            },
            "faces": self.faces,
            "finish": dict(self.finish),
            "guard": recipe.guard.model_dump(mode="json"),
            "output": recipe.output.model_dump(mode="json"),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_size(width: int, height: int, recipe: Recipe) -> tuple[int, int, float]:
    """The master's exact size and the factor it is from the scan."""
    up = recipe.upscale
    if up.scale is not None:
        factor = up.scale
        return max(1, round(width * factor)), max(1, round(height * factor)), factor
    long_edge = up.long_edge
    if long_edge is None:  # the recipe's validator sets exactly one of the two
        raise ValueError("the recipe's upscale sets neither 'scale' nor 'long_edge'")
    factor = long_edge / max(width, height)
    if width >= height:
        return long_edge, max(1, round(height * factor)), factor
    return max(1, round(width * factor)), long_edge, factor


def plan_scan(
    recipe: Recipe, findings: dict[str, Any], width: int, height: int, *, model_scale: int,
    denoiser_available: bool, problems: frozenset[str] | set[str] = frozenset(), has_mask: bool = False,
    face_detector_available: bool = False, model_name: str | None = None, model_training: str | None = None,
    chroma_subsampled: bool = False,
) -> Plan:
    """`model_name`: the upscaler loaded for the run (the recipe's model, or its fallback);
    `model_training`: how it was trained ("gan" or "fidelity", from its card; None: unknown);
    `chroma_subsampled`: the scan is a JPEG that stored its colour at reduced resolution."""
    plan = Plan()
    # Upscale first: deblurring depends on it.
    _plan_upscale(plan, recipe, width, height, model_scale, model_name or recipe.upscale.model)
    _plan_tone(plan, recipe, findings, problems)
    _plan_cleanup(plan, recipe, findings, problems, has_mask, chroma_subsampled)
    _plan_denoise(plan, recipe, findings, denoiser_available, model_training)
    _plan_deblur(plan, recipe, findings, problems)
    _plan_faces(plan, recipe, face_detector_available)
    _plan_finish(plan, recipe, findings, problems, model_training)
    return plan


def _plan_finish(
    plan: Plan, recipe: Recipe, findings: dict[str, Any], problems: frozenset[str] | set[str],
    model_training: str | None,
) -> None:
    fin = recipe.finish
    plan.finish = FinishParams(color_transfer=fin.color_transfer, consistency=0.0, consistency_blur=None,
                               fidelity_blend=fin.fidelity_blend, grain=fin.grain, sharpen=fin.sharpen)
    if not plan.model_passes:
        return
    if model_training == "fidelity" and fin.fidelity_model_blend is not None:
        noise = float(findings.get("noise_sigma", 0.0))
        share = _blend_share(noise, recipe.denoise.min_sigma)
        blend = round(fin.fidelity_model_blend * share, 3)
        plan.finish["fidelity_blend"] = blend
        plan.reasons.append(f"fidelity blend: {blend} (not {fin.fidelity_blend}): "
                            f"{plan.upscale_model} is trained for fidelity and invents less texture to tame"
                            + (f"; {fin.fidelity_model_blend} lightened for noise sigma {noise:.1f}" if share < 1 else ""))
    if fin.gan_corrections_only and model_training == "fidelity" and (fin.color_transfer > 0 or fin.consistency > 0):
        # Consistency re-blurs what the model sharpened wherever the scan's blur went undiagnosed
        # (bench/quality.py with restorium-fidelity-x4v3: the blur row +1.06 dB without the two).
        plan.finish["color_transfer"] = 0.0
        plan.reasons.append(f"colour transfer and consistency: skipped, {plan.upscale_model} is trained for "
                            "fidelity: it keeps the scan's colours and structure, there is no invented "
                            "detail or colour drift to pull back")
        return
    if fin.consistency <= 0:
        return
    if JPEG_BLOCKING in problems:
        # The restored scan still carries the 8x8 grid; reproducing it would put the blocks back
        # (bench/quality.py x4+jpeg: -0.4 dB, SSIM -0.03 with it).
        plan.reasons.append("consistency: skipped, JPEG blocking measured: matching the scan would put its "
                            "8x8 blocks back into the master")
        return
    plan.finish["consistency"] = fin.consistency
    replaces = ""
    if fin.color_transfer > 0 and fin.consistency == 1.0:
        # Consistency matches the scan's colours locally, which a global Lab transfer only does on
        # average: the transfer would change nothing it keeps (bench/quality.py: +0.02 dB) and
        # its two Lab conversions of the full-size master were most of the finishing time.
        plan.finish["color_transfer"] = 0.0
        replaces = " (it does the colour transfer's work, locally)"
    blur = findings.get("blur") or {}
    through = ""
    if plan.deblur is None and ({MOTION_BLUR, DEFOCUS_BLUR} & set(problems)) and blur.get("type") in ("motion", "defocus"):
        # The scan is blurred and was not deconvolved: the master, blurred the same way, must match.
        plan.finish["consistency_blur"] = dict(blur)
        through = f" blurred by the diagnosed {blur['type']} blur and"
    plan.reasons.append(f"consistency: the master,{through} shrunk to the scan's size, reproduces the restored "
                        f"scan{replaces}")


def _plan_tone(plan: Plan, recipe: Recipe, findings: dict[str, Any], problems: frozenset[str] | set[str]) -> None:
    tone = recipe.tone
    if not tone.auto:
        plan.reasons.append("tone and colour: kept as scanned (the recipe turns automatic tone off)")
        return
    contrast = findings.get("contrast")
    if FADED in problems and tone.levels_strength > 0:
        share = fade_severity(contrast)
        strength = round(tone.levels_strength * share, 3)
        plan.levels = LevelsParams(black_clip=tone.black_clip, white_clip=tone.white_clip, strength=strength)
        plan.reasons.append(f"levels: faded (contrast {contrast:.2f}), stretched at strength {strength}"
                            + ("" if share == 1.0 else f" ({share:.0%} of the preset's {tone.levels_strength}: "
                                                       "a borderline fade)"))
        if tone.clahe_strength > 0:
            clahe = round(tone.clahe_strength * share, 3)
            plan.clahe = ClaheParams(clip_limit=tone.clahe_clip_limit, strength=clahe)
            plan.reasons.append(f"local contrast: CLAHE on luminance at strength {clahe}")
    cast = findings.get("color_cast") or {}
    if CAST in problems and tone.white_balance_strength > 0 and tone.keep_toned and is_toned_print(cast):
        plan.reasons.append(f"white balance: skipped, a toned monochrome print (chroma residual "
                            f"{cast['chroma_residual']:.1f} Δab): its tone is part of the object")
    elif CAST in problems and tone.white_balance_strength > 0:
        share = cast_severity(cast)
        strength = round(tone.white_balance_strength * share, 3)
        plan.white_balance = WhiteBalanceParams(method=tone.white_balance, strength=strength)
        plan.reasons.append(
            f"white balance: colour cast Δab {cast.get('magnitude', 0):.1f}, {tone.white_balance} "
            f"at strength {strength}"
            + ("" if share == 1.0 else f" ({share:.0%} of the preset's {tone.white_balance_strength}: "
                                       "a borderline cast, e.g. a warm or colourful photograph)")
        )


def fade_severity(contrast: float | None) -> float:
    """0-1: how far under the faded threshold the contrast is (1 at FADE_RAMP under or more)."""
    if contrast is None:
        return 1.0
    return round(min(max((FADED_CONTRAST - contrast) / FADE_RAMP, 0.05), 1.0), 3)


def cast_severity(cast: dict[str, Any]) -> float:
    """0-1: how far the cast clears both reporting gates (its size, and its size against the
    picture's own chroma spread); 1 when the spread is unknown (findings from older versions)."""
    magnitude, spread = float(cast.get("magnitude", 0.0)), cast.get("spread")
    if spread is None:
        return 1.0
    ratio = min(magnitude / CAST_DELTA_AB, magnitude / max(CAST_SPREAD_RATIO * float(spread), 1e-9))
    return round(min(max((ratio - 1.0) / CAST_RAMP, 0.05), 1.0), 3)


def _plan_cleanup(
    plan: Plan, recipe: Recipe, findings: dict[str, Any], problems: frozenset[str] | set[str], has_mask: bool,
    chroma_subsampled: bool = False,
) -> None:
    step = recipe.cleanup
    found = problems & {SCRATCHES, DUST}
    if not (step.auto and found and has_mask):
        return
    coverage = (findings.get("scratches") or {}).get("coverage", 0.0)
    reach = CHROMA_REACH if chroma_subsampled else 0
    plan.inpaint = InpaintParams(method=step.method, radius=step.radius, dilate=step.dilate,
                                 chroma_dilate=step.dilate + reach)
    plan.reasons.append(
        f"cleanup: {' and '.join(sorted(found))} inpainted ({step.method}) inside the detected mask "
        f"({coverage * 100:.2f} % of pixels)"
        + (f", the colour {reach} px further (a JPEG with its colour at reduced resolution)" if reach else "")
    )


def _plan_denoise(plan: Plan, recipe: Recipe, findings: dict[str, Any], denoiser_available: bool,
                  model_training: str | None = None) -> None:
    step = recipe.denoise
    if step.method == "off":
        plan.reasons.append("denoise: off in the recipe")
        return
    measured = float(findings.get("noise_sigma", 0.0))
    if step.sigma == "auto":
        left_to_model = step.fidelity_model_min_sigma
        if (left_to_model is not None and model_training == "fidelity" and plan.model_passes
                and step.min_sigma <= measured < left_to_model):
            plan.reasons.append(f"denoise: skipped, measured noise sigma {measured:.2f} < {left_to_model}: "
                                f"{plan.upscale_model} is trained for fidelity on grained scans and removes it")
            plan.grain_left_to_model = measured  # the guard takes it out of its reference
            return
        if measured < step.min_sigma:
            plan.reasons.append(f"denoise: skipped, measured noise sigma {measured:.2f} < {step.min_sigma}")
            return
        sigma = min(step.max_sigma, step.auto_fraction * measured)
        plan.reasons.append(
            f"denoise: sigma {sigma:.2f} = {step.auto_fraction} x measured {measured:.2f}"
            + (f", capped at {step.max_sigma}" if sigma == step.max_sigma else "")
        )
    else:
        sigma = float(step.sigma)
        plan.reasons.append(f"denoise: sigma {sigma:.2f} fixed by the recipe")
    method = step.method
    if method == "ffdnet" and not denoiser_available:
        method = "nlmeans"
        plan.reasons.append(f"denoise: {FFDNET_MODEL} weights not available, using non-local means")
    plan.denoise_method, plan.denoise_sigma = method, round(sigma, 3)


def _blend_share(noise: float, floor: float) -> float:
    """How much of the likeness blend a scan with this measured noise gets: the blend brings the
    scan's grain back with its detail, grain the model removed. All of it up to the noise the
    denoiser leaves alone (`floor`), half at BLEND_NOISE_HALF and over."""
    return 1.0 - 0.5 * min(max(noise - floor, 0.0) / (BLEND_NOISE_HALF - floor), 1.0)


def _plan_deblur(plan: Plan, recipe: Recipe, findings: dict[str, Any], problems: frozenset[str] | set[str]) -> None:
    step = recipe.deblur
    blur = findings.get("blur") or {}
    kind = {MOTION_BLUR: "motion", DEFOCUS_BLUR: "defocus"}
    found = [kind[p] for p in (MOTION_BLUR, DEFOCUS_BLUR) if p in problems]
    if not found or not step.auto or step.strength <= 0:
        return
    sigma = blur.get("sigma_px") or 0.0
    if found[0] == "defocus" and plan.model_passes and sigma <= MODEL_HANDLES_DEFOCUS_PX:
        # Real-ESRGAN is trained on blurred inputs and sharpens mild defocus itself; deconvolving
        # first overshoots (bench/quality.py: -1.5 dB on x4+blur), so leave it to the model.
        plan.reasons.append(f"deblur: skipped, defocus sigma {sigma:.1f} px is within what "
                            f"{plan.upscale_model} restores itself (<= {MODEL_HANDLES_DEFOCUS_PX} px)")
        return
    # Deconvolution sees the noise left after denoising, not the scan's.
    measured = float(findings.get("noise_sigma", 0.0))
    residual = math.sqrt(max(measured**2 - plan.denoise_sigma**2, 0.0)) if plan.denoise_sigma else measured
    residual = round(max(residual, 0.5), 3)
    blur = dict(blur)
    detail = (f"{blur.get('length_px', 0):.0f} px at {blur.get('angle_deg', 0):.0f}°" if found[0] == "motion"
              else f"sigma {sigma:.1f} px")
    if found[0] == "defocus" and plan.model_passes:
        # Gaussian blurs add in quadrature: deconvolve only the part the model does not restore
        # itself. The whole of it, then the model's own sharpening, overshoots: Set5's head at a
        # measured 2.2 px (a soft photo, blurred 1 px) lost 4.5 dB to the model alone.
        blur.update(measured_sigma_px=sigma, sigma_px=round(math.sqrt(sigma**2 - MODEL_HANDLES_DEFOCUS_PX**2), 3))
        detail += f", of which {blur['sigma_px']:.1f} px beyond what {plan.upscale_model} restores"
    plan.deblur = DeblurParams(blur=blur, strength=step.strength, noise_sigma=residual,
                               max_noise_gain=step.max_noise_gain)
    plan.reasons.append(f"deblur: {found[0]} blur ({detail}), Wiener at strength {step.strength}, "
                        f"noise gain at most {step.max_noise_gain}x")


def _plan_upscale(plan: Plan, recipe: Recipe, width: int, height: int, model_scale: int, model: str) -> None:
    tw, th, factor = target_size(width, height, recipe)
    plan.target_width, plan.target_height = tw, th
    if factor <= 1.0:
        plan.reasons.append(f"upscale: target {tw}x{th} is not larger than the scan ({width}x{height}); no model pass")
        return
    passes = max(1, math.ceil(math.log(factor) / math.log(model_scale) - 1e-9))
    if passes > MAX_MODEL_PASSES:
        raise ValueError(
            f"upscale factor {factor:.2f} needs {passes} passes of a x{model_scale} model "
            f"(at most {MAX_MODEL_PASSES}); choose a smaller --scale or --long-edge"
        )
    plan.upscale_model, plan.model_passes = model, passes
    if model != recipe.upscale.model:
        plan.reasons.append(f"upscale: {recipe.upscale.model} weights not available, using the recipe's fallback")
    if width * height <= recipe.upscale.self_ensemble_max_pixels:
        plan.ensemble_views = ENSEMBLE_VIEWS
        plan.reasons.append(f"upscale: {width}x{height} is at most {recipe.upscale.self_ensemble_max_pixels:,} px: "
                            f"each pass averaged over the scan's {ENSEMBLE_VIEWS} flips and rotations")
    native = model_scale**passes
    resize = "exact" if native == factor else f"then resized from x{native} to x{factor:.4g}"
    plan.reasons.append(f"upscale: {plan.upscale_model} x{model_scale} x{passes} pass(es) {resize} → {tw}x{th}")


def _plan_faces(plan: Plan, recipe: Recipe, available: bool) -> None:
    faces = recipe.faces
    if not faces.enabled:
        return
    if not available:
        plan.reasons.append(f"faces: protection asked for but {FACE_MODEL} weights are not available")
        return
    plan.faces = FaceParams(score_threshold=faces.score_threshold, ai_share=faces.ai_share)
    plan.reasons.append(f"faces: detected faces keep {faces.ai_share:.0%} of the model's detail")
