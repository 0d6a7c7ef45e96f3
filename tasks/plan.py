"""The planner: the recipe as it will be applied to one scan, with a reason for each choice.

Pure function of (recipe, QA findings, scan size, available models): the same scan and recipe
always give the same plan, which is what makes the recipe hash a sound idempotency key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from config.recipe import Recipe

# The denoiser model the recipe's "ffdnet" method uses.
FFDNET_MODEL = "ffdnet_color"
MAX_MODEL_PASSES = 2


@dataclass
class Plan:
    denoise_method: str  # ffdnet | nlmeans | off
    denoise_sigma: float  # 0-255 scale; 0 when off
    upscale_model: str | None  # None: the scan is already at or above the target size
    model_passes: int
    target_width: int
    target_height: int
    reasons: list[str] = field(default_factory=list)

    def resolved(self, recipe: Recipe) -> dict[str, Any]:
        """Every value used, recorded in the catalog and the master's XMP."""
        return {
            "name": recipe.name,
            "hash": recipe.hash,
            "seed": recipe.seed,
            "denoise": {"method": self.denoise_method, "sigma": self.denoise_sigma},
            "upscale": {
                "model": self.upscale_model, "passes": self.model_passes,
                "width": self.target_width, "height": self.target_height,
                "tile": recipe.upscale.tile, "tile_overlap": recipe.upscale.tile_overlap,
            },
            "finish": recipe.finish.model_dump(mode="json"),
            "output": recipe.output.model_dump(mode="json"),
        }


def target_size(width: int, height: int, recipe: Recipe) -> tuple[int, int, float]:
    """The master's exact size and the factor it is from the scan."""
    up = recipe.upscale
    if up.scale is not None:
        factor = up.scale
        return max(1, round(width * factor)), max(1, round(height * factor)), factor
    factor = up.long_edge / max(width, height)
    if width >= height:
        return up.long_edge, max(1, round(height * factor)), factor
    return max(1, round(width * factor)), up.long_edge, factor


def plan_scan(
    recipe: Recipe, findings: dict[str, float], width: int, height: int,
    *, model_scale: int, denoiser_available: bool,
) -> Plan:
    reasons: list[str] = []
    method, sigma = _plan_denoise(recipe, findings, denoiser_available, reasons)
    tw, th, factor = target_size(width, height, recipe)
    if factor <= 1.0:
        model, passes = None, 0
        reasons.append(
            f"upscale: target {tw}x{th} is not larger than the scan ({width}x{height}); no model pass"
        )
    else:
        model = recipe.upscale.model
        passes = max(1, math.ceil(math.log(factor) / math.log(model_scale) - 1e-9))
        if passes > MAX_MODEL_PASSES:
            raise ValueError(
                f"upscale factor {factor:.2f} needs {passes} passes of a x{model_scale} model "
                f"(at most {MAX_MODEL_PASSES}); choose a smaller --scale or --long-edge"
            )
        native = model_scale**passes
        resize = "exact" if native == factor else f"then resized from x{native} to x{factor:.4g}"
        reasons.append(f"upscale: {model} x{model_scale} x{passes} pass(es) {resize} → {tw}x{th}")
    return Plan(method, sigma, model, passes, tw, th, reasons)


def _plan_denoise(
    recipe: Recipe, findings: dict[str, float], denoiser_available: bool, reasons: list[str],
) -> tuple[str, float]:
    step = recipe.denoise
    if step.method == "off":
        reasons.append("denoise: off in the recipe")
        return "off", 0.0
    measured = float(findings.get("noise_sigma", 0.0))
    if step.sigma == "auto":
        if measured < step.min_sigma:
            reasons.append(f"denoise: skipped, measured noise sigma {measured:.2f} < {step.min_sigma}")
            return "off", 0.0
        sigma = min(step.max_sigma, step.auto_fraction * measured)
        reasons.append(
            f"denoise: sigma {sigma:.2f} = {step.auto_fraction} x measured {measured:.2f}"
            + (f", capped at {step.max_sigma}" if sigma == step.max_sigma else "")
        )
    else:
        sigma = float(step.sigma)
        reasons.append(f"denoise: sigma {sigma:.2f} fixed by the recipe")
    method = step.method
    if method == "ffdnet" and not denoiser_available:
        method = "nlmeans"
        reasons.append(f"denoise: {FFDNET_MODEL} weights not available, using OpenCV-style non-local means")
    return method, round(sigma, 3)
