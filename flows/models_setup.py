"""Which model weights a run uses, resolved on the driver before any scan is touched.

The weights' sha256 go into every master's idempotency key, so they are settled once, here.
A missing upscaling model stops the run before it starts, with what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from config.recipe import Recipe
from config.settings import Settings
from models.weights import FetchError, ResolvedWeights, WeightsNotFoundError, fetch, resolve
from tasks.steps.plan import FACE_MODEL, FFDNET_MODEL


class MissingModelError(RuntimeError):
    pass


@dataclass
class RecipeModels:
    upscale_models: list[str]
    denoiser: str | None
    weights: dict[str, str]  # model name → sha256 of the file that will be loaded
    notes: list[str] = field(default_factory=list)
    face_detector: str | None = None
    precision: str = "fp32"  # the models' compute precision, resolved for the run's device
    damage_detector: str | None = None  # the learned damage detector; None: the classical one


def run_precision(cfg: Settings) -> str:
    """The settings' precision resolved on the driver (it goes into every derivation key, so it is
    settled once, like the weights). 'auto' is judged on the device the settings name as this
    machine sees it: on a cluster whose GPUs the driver lacks, name the precision explicitly."""
    from models.loading import select_device
    from models.precision import resolve_precision

    return resolve_precision(cfg.precision, select_device(cfg.device))


def _upscaler(name: str, cfg: Settings) -> ResolvedWeights:
    try:
        return resolve(name, cfg.models_dir)
    except WeightsNotFoundError as missing:
        try:
            return fetch(name, cfg.models_dir)
        except FetchError as failed:
            raise MissingModelError(f"{missing}\nAn automatic download was tried and failed: {failed}") from failed


def resolve_recipe_models(recipe: Recipe, cfg: Settings, precision: str | None = None) -> RecipeModels:
    """precision: a recorded one (reproduce); default: the settings' (run_precision)."""
    name, notes = recipe.upscale.model, []
    try:
        upscaler = _upscaler(name, cfg)
    except MissingModelError as missing:
        if recipe.upscale.fallback_model is None:
            raise
        # Only a weights file that is missing falls back; one that is there but wrong still stops the run.
        try:
            upscaler = _upscaler(recipe.upscale.fallback_model, cfg)
        except MissingModelError as also:
            raise MissingModelError(f"{missing}\n\nThe recipe's fallback model is missing too: {also}") from also
        notes.append(f"{name} weights are not in {cfg.models_dir}: upscaling with the recipe's fallback, "
                     f"{recipe.upscale.fallback_model} (masters record which model made them)")
        name = recipe.upscale.fallback_model
    weights = {name: upscaler.sha256}
    denoiser = None
    if recipe.denoise.method == "ffdnet":
        try:
            weights[FFDNET_MODEL] = resolve(FFDNET_MODEL, cfg.models_dir).sha256
            denoiser = FFDNET_MODEL
        except WeightsNotFoundError:
            notes.append(
                f"{FFDNET_MODEL} weights are not in {cfg.models_dir}: denoising falls back to non-local means"
            )
    faces = None
    if recipe.faces.enabled:
        try:
            weights[FACE_MODEL] = resolve(FACE_MODEL, cfg.models_dir).sha256
            faces = FACE_MODEL
        except WeightsNotFoundError:
            notes.append(f"{FACE_MODEL} weights are not in {cfg.models_dir}: faces are not protected")
    damage = recipe.cleanup.detector if recipe.cleanup.auto else None
    if damage is not None:
        try:
            weights[damage] = resolve(damage, cfg.models_dir).sha256
        except WeightsNotFoundError:
            notes.append(f"{damage} weights are not in {cfg.models_dir} (make them: restorium models prepare): "
                         "dust and scratches are found by the classical detector")
            damage = None
    return RecipeModels([name], denoiser, weights, notes, faces, precision or run_precision(cfg), damage)
