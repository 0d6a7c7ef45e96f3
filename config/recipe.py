"""Recipes: every parameter that changes pixels, validated, with one canonical JSON form and hash.

A preset (config/presets/NAME.yaml) is a recipe; command-line overrides (--scale, --long-edge)
produce a new recipe whose hash differs, so they are recorded like any other parameter.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DenoiseStep(_Strict):
    """Denoise before any upscaling, so the model does not sharpen grain into detail."""

    method: Literal["ffdnet", "nlmeans", "off"] = "ffdnet"
    # Noise level on the 0-255 scale, or "auto": a fraction of the sigma QA measured.
    sigma: float | Literal["auto"] = "auto"
    auto_fraction: float = Field(0.8, gt=0, le=1.5)
    min_sigma: float = Field(2.0, ge=0, description="Measured noise below this: the step is skipped.")
    max_sigma: float = Field(15.0, gt=0, le=75, description="Cap: restore at moderate strength.")
    # Before an upscaler trained for fidelity on grained scans (restorium-fidelity-x4v3: sigma up to
    # 15), noise measured below this is left to the model: FFDNet first smooths texture the model
    # would keep (bench/quality.py, issue 22). None: min_sigma whatever the model.
    fidelity_model_min_sigma: float | None = Field(None, ge=0, description="Measured noise below this is left "
                                                   "to an upscaler trained for fidelity (None: min_sigma).")


class ToneStep(_Strict):
    """Tone and colour cleanup, applied only where QA measured fading or a colour cast."""

    auto: bool = Field(True, description="Off: keep tone and colour exactly as scanned.")
    levels_strength: float = Field(0.7, ge=0, le=1, description="Levels stretch for faded scans.")
    black_clip: float = Field(0.001, ge=0, lt=0.5)
    white_clip: float = Field(0.001, ge=0, lt=0.5)
    clahe_strength: float = Field(0.0, ge=0, le=1, description="Local contrast (CLAHE on L) for faded scans.")
    clahe_clip_limit: float = Field(2.0, gt=0)
    white_balance: Literal["grey-edge", "grey-world", "gains"] = "grey-edge"
    white_balance_strength: float = Field(0.6, ge=0, le=1, description="For a measured colour cast.")
    # Off by default only so recipes recorded before it existed keep their meaning (ADDED_LATER);
    # every preset turns it on.
    keep_toned: bool = Field(False, description="Leave a sepia/selenium/gold toned monochrome print's "
                             "tone alone: white balance would neutralise it.")


class CleanupStep(_Strict):
    """Dust and scratch removal, applied only inside the mask QA detected."""

    auto: bool = True
    # tasks.steps.inpaint: the presets use "spline" (bench/inpainting.py); "telea" stays the
    # default so recipes recorded before the sparse fills existed keep their meaning.
    method: Literal["spline", "biharmonic", "harmonic", "telea", "ns"] = "telea"
    radius: int = Field(3, ge=1, le=15)
    dilate: int = Field(1, ge=0, le=5)
    # The learned damage detector (models.damage), whose mask is added to the classical one where its
    # weights are present; None: the classical detector alone (no preset names it: a fresh install
    # does not make its weights).
    detector: str | None = Field(None, description="Damage-segmentation model for the cleanup mask.")


class DeblurStep(_Strict):
    """Regularised deconvolution for the blur type QA diagnosed (motion or defocus)."""

    auto: bool = True
    strength: float = Field(0.5, ge=0, le=1)
    max_noise_gain: float = Field(1.5, ge=1, le=4)


class UpscaleStep(_Strict):
    model: str = "realesr-general-x4v3"
    # Used when `model`'s weights are neither in the models folder nor downloadable (a model the
    # team makes itself, e.g. with `restorium models finetune`); the master records which one ran.
    fallback_model: str | None = None
    # Exactly one of: a factor of the input size, or a long edge in pixels.
    scale: float | None = Field(2.0, gt=0, le=16)
    long_edge: int | None = Field(None, ge=16, le=65_536)
    tile: int = Field(256, ge=32, description="Tile edge in input pixels; 0-overlap seams are blended away.")
    tile_overlap: int = Field(16, ge=0)
    # Geometric self-ensemble (the model run on the scan in its 8 flips and rotations, the results
    # turned back and averaged): texture the model invents in one orientation and not in another
    # averages out, what all eight agree on stays. 8x the model time, so only for small scans.
    # 0: off (recipes from before it existed); the presets use it up to 65,536 px (256 x 256).
    self_ensemble_max_pixels: int = Field(0, ge=0, description="Scans of at most this many pixels are "
                                          "upscaled in all 8 flips and rotations and averaged (0: never).")

    @model_validator(mode="after")
    def _one_target(self) -> UpscaleStep:
        if (self.scale is None) == (self.long_edge is None):
            raise ValueError("upscale needs exactly one of 'scale' or 'long_edge'")
        if self.tile_overlap * 2 >= self.tile:
            raise ValueError("tile_overlap must be less than half the tile size")
        return self


class FacesStep(_Strict):
    """Keep faces true to the person: less model detail inside detected faces (opt-in)."""

    enabled: bool = False
    ai_share: float = Field(0.5, ge=0, le=1, description="Share of the model's result kept inside faces.")
    score_threshold: float = Field(0.8, gt=0, lt=1)


class FinishStep(_Strict):
    # Share of a classical (Lanczos) upscale of the restored image blended into the AI output:
    # keeps the master close to the scan and tames invented texture ("plastic skin").
    fidelity_blend: float = Field(0.2, ge=0, le=1)
    # Lab mean/std transfer from the restored scan: undoes the model's colour drift.
    color_transfer: float = Field(1.0, ge=0, le=1)
    # Back-projection onto the restored scan (tasks.steps.finish.consistency): the master, shrunk to the
    # scan's size, reproduces it. Off by default so older recipe files keep their meaning.
    consistency: float = Field(0.0, ge=0, le=1)
    # Colour transfer and consistency pull a GAN-trained model's colour drift and invented structure
    # back onto the scan. A model trained for fidelity has neither to pull back, and consistency
    # with a scan whose blur went undiagnosed undoes the deblurring it learned (bench/quality.py,
    # restorium-fidelity-x4v3: x4+blur 23.39 dB with both, 24.45 without). Off by default so older
    # recipes keep their meaning (ADDED_LATER); the presets turn it on.
    gan_corrections_only: bool = Field(False, description="Colour transfer and consistency only after a "
                                       "GAN-trained upscaler.")
    # A GAN-trained upscaler needs the classical blend to tame the texture it invents; one trained
    # for fidelity needs less (bench/quality.py: 0.2 instead of 0.3 gains 0.02 dB with
    # restorium-fidelity-x4v3). None: `fidelity_blend` whatever the model (recipes from before it existed).
    fidelity_model_blend: float | None = Field(None, ge=0, le=1, description="The fidelity blend after an "
                                               "upscaler trained for fidelity (None: fidelity_blend); "
                                               "lightened on a grainy scan, to half at a noise sigma of 10.")
    grain: float = Field(0.0, ge=0, le=0.05, description="Film grain std at mid-grey (0-1 scale).")
    sharpen: float = Field(0.0, ge=0, le=1, description="Unsharp-mask amount on luminance.")


class GuardStep(_Strict):
    """Fidelity guard: the master, shrunk back to the scan's size, must still look like it."""

    ssim_threshold: float = Field(0.90, ge=0, le=1)


class OutputSpec(_Strict):
    master_compression: Literal["deflate", "lzw", "none"] = "deflate"
    access_quality: int = Field(90, ge=1, le=100)
    access_long_edge: int = Field(2048, ge=64)
    review_sheet: bool = True


class Recipe(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    # In the order they run: clean up before any AI, upscale after restoring, finish lightly.
    tone: ToneStep = ToneStep()
    cleanup: CleanupStep = CleanupStep()
    denoise: DenoiseStep = DenoiseStep()
    deblur: DeblurStep = DeblurStep()
    upscale: UpscaleStep = UpscaleStep()
    faces: FacesStep = FacesStep()
    finish: FinishStep = FinishStep()
    guard: GuardStep = GuardStep()
    output: OutputSpec = OutputSpec()

    def canonical_json(self) -> str:
        # The description is prose for people; it changes no pixel, so it is not hashed. Steps
        # added after recipes were first recorded are left out at the value that does what
        # recipes without them did, so a recorded recipe keeps its hash (and `reproduce` works).
        data = self.model_dump(mode="json", exclude={"description"})
        for (section, key), legacy in ADDED_LATER.items():
            if data[section].get(key) == legacy:
                del data[section][key]
        return canonical_json(data)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def with_target(self, *, scale: float | None = None, long_edge: int | None = None) -> Recipe:
        """The recipe with the upscale target overridden (from --scale or --long-edge)."""
        if scale is None and long_edge is None:
            return self
        if scale is not None and long_edge is not None:
            raise ValueError("give --scale or --long-edge, not both")
        upscale = self.upscale.model_copy(update={"scale": scale, "long_edge": long_edge})
        return self.model_copy(update={"upscale": UpscaleStep.model_validate(upscale.model_dump())})


# (section, field) → the value that reproduces recipes recorded before the field existed. A new
# field's schema default must be this value: a stored recipe without it then means what it did.
ADDED_LATER: dict[tuple[str, str], Any] = {
    ("finish", "consistency"): 0.0,
    ("tone", "keep_toned"): False,
    ("upscale", "fallback_model"): None,
    ("finish", "gan_corrections_only"): False,
    ("finish", "fidelity_model_blend"): None,
    ("cleanup", "detector"): None,
    ("denoise", "fidelity_model_min_sigma"): None,
    ("upscale", "self_ensemble_max_pixels"): 0,
}


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same values always give the same bytes (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RecipeError(ValueError):
    pass


def list_presets() -> list[str]:
    folder = resources.files("config.presets")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str) -> Recipe:
    """A preset by name (config/presets/NAME.yaml) or a recipe YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.is_file():
        text, origin = path.read_text(), str(path)
    else:
        resource = resources.files("config.presets").joinpath(f"{name_or_path}.yaml")
        if not resource.is_file():
            raise RecipeError(
                f"no recipe preset named {name_or_path!r} (presets: {', '.join(list_presets())}; "
                "or give the path of a recipe .yaml file)"
            )
        text, origin = resource.read_text(), f"preset {name_or_path}"
    try:
        data = yaml.safe_load(text) or {}
        return Recipe.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise RecipeError(f"invalid recipe in {origin}: {exc}") from exc
