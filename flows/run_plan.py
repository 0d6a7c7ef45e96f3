"""What a run applies, settled once on the driver before any scan is touched, and the one way a
scan's job is built from it.

`plan_run` loads the recipe (with its target size), the capture profile the QA gate enforces and
the model weights (their sha256 and the precision go into every derivation key), so a bad recipe,
profile or missing weights stop the run before Prefect or Ray start. The batch flow, reviewers'
reprocessing and `reproduce` all build their ScanJobs through `RunPlan.job`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.capture import load_capture_profile
from config.recipe import Recipe, load_recipe
from config.settings import Settings
from flows.models_setup import MissingModelError, RecipeModels, resolve_recipe_models
from models.precision import PrecisionError
from tasks.files.limits import Limits
from tasks.files.metadata_sheet import MetadataSheet, read_sheet
from tasks.records.item_metadata import ItemMetadata
from tasks.records.keys import stable_uuid
from tasks.records.types import ScanJob, StepRecord


class RunPlanError(ValueError):
    """The run cannot start: a bad recipe or capture profile, or missing weights (the message says which)."""


@dataclass(frozen=True)
class JobOriginal:
    """The original a job works on, as ingest and the catalog know it."""

    path: str  # where to read it now
    sha256: str
    item_uuid: str
    item_identifier: str
    original_uuid: str
    catalogued_path: str  # where the catalog first recorded it (provenance names this one)
    prior_steps: tuple[StepRecord, ...] = ()  # its ingestion and digest events


@dataclass(frozen=True)
class RunPlan:
    settings: Settings
    recipe: Recipe
    models: RecipeModels
    capture: dict[str, Any] | None = None  # the capture profile the QA gate enforces (JSON form)
    sheet: MetadataSheet | None = None  # the item spreadsheet (`--metadata`): one row per scan
    sign: bool = False  # content credentials on masters and access copies (`--sign`)

    @property
    def limits(self) -> Limits:
        return Limits(self.settings.max_pixels, self.settings.max_decoded_bytes)

    def job(
        self, original: JobOriginal, key: str, run_uuid: str, *, folder: Path = Path(),
        into: Path | None = None, master_uuid: str | None = None, gate: bool = True,
        item: ItemMetadata | None = None,
    ) -> ScanJob:
        """One scan's job. Its master, access copy and review sheet go into the archive under
        masters/, access/ and reviews/ in `folder`, named <stem>.<key[:12]>; or, for a reproduction,
        `into` a scratch folder (master.tif and access.jpg, no review sheet) with the recorded
        master's uuid. `gate`: whether the QA gate checks the capture profile."""
        cfg = self.settings
        if into is None:
            name = f"{Path(original.path).stem}.{key[:12]}"
            master, access = cfg.masters_dir / folder / f"{name}.tif", cfg.access_dir / folder / f"{name}.jpg"
            review = str(cfg.reviews_dir / folder / f"{name}.png")
            access_uuid = stable_uuid("access", key)
        else:
            master, access, review = into / "master.tif", into / "access.jpg", ""
            access_uuid = stable_uuid("reproduce-access", master_uuid or stable_uuid("master", key))
        return ScanJob(
            original_path=original.path, original_sha256=original.sha256,
            item_uuid=original.item_uuid, item_identifier=original.item_identifier,
            original_uuid=original.original_uuid,
            master_uuid=master_uuid or stable_uuid("master", key), access_uuid=access_uuid,
            derivation_key=key, run_uuid=run_uuid, recipe=self.recipe.model_dump(mode="json"),
            recipe_hash=self.recipe.hash, master_path=str(master), access_path=str(access), review_path=review,
            capture_profile=self.capture if gate else None, prior_steps=list(original.prior_steps),
            catalogued_path=original.catalogued_path, max_pixels=cfg.max_pixels, max_bytes=cfg.max_decoded_bytes,
            item_metadata=item.to_dict() if item else None,
            signing=_signing_paths(cfg) if self.sign and into is None else None,
            iiif={"root": str(cfg.home / "iiif"), "base_url": cfg.iiif_base_url}
            if cfg.iiif_base_url and into is None else None,
        )


def plan_run(
    cfg: Settings, recipe: str | Recipe, *, scale: float | None = None, long_edge: int | None = None,
    precision: str | None = None, metadata: str | Path | None = None, sign: bool = False,
) -> RunPlan:
    """recipe: a preset name, a recipe YAML path, or a Recipe (a reviewer's request carries one);
    precision: a recorded one (reproduce), default the settings'; metadata: the item spreadsheet
    (a malformed sheet stops the run before it starts, naming its rows)."""
    try:
        chosen = (recipe if isinstance(recipe, Recipe) else load_recipe(recipe)).with_target(
            scale=scale, long_edge=long_edge)
        capture = (load_capture_profile(cfg.capture_profile).model_dump(mode="json")
                   if cfg.capture_profile else None)
        models = resolve_recipe_models(chosen, cfg, precision)
        sheet = read_sheet(Path(metadata).expanduser()) if metadata else None
        if sign:
            _check_signing(cfg)
    except (ValueError, OSError, MissingModelError, PrecisionError) as exc:  # recipe, profile, weights, sheet
        raise RunPlanError(str(exc)) from exc
    return RunPlan(cfg, chosen, models, capture, sheet, sign)


def _check_signing(cfg: Settings) -> None:
    """The identity loads and signs (a probe), here on the driver, not on the first scan's worker."""
    from tasks.files.content_credentials import SigningIdentity  # c2pa's library: only when signing

    if cfg.signing_cert is None or cfg.signing_key is None:
        raise ValueError("--sign needs a signing certificate and key: set RESTORIUM_SIGNING_CERT and "
                         "RESTORIUM_SIGNING_KEY (README: Content credentials)")
    SigningIdentity.from_files(cfg.signing_cert, cfg.signing_key, tsa_url=cfg.signing_tsa_url)


def _signing_paths(cfg: Settings) -> dict[str, str | None]:
    return {"cert": str(cfg.signing_cert), "key": str(cfg.signing_key), "tsa_url": cfg.signing_tsa_url}


def check_sheet(plan: RunPlan, scans: list[Path], root: Path) -> None:
    """Every row of the item spreadsheet names one scan found under root (else the run does not start)."""
    if plan.sheet is not None:
        try:
            plan.sheet.check_against(scans, root)
        except ValueError as exc:
            raise RunPlanError(str(exc)) from exc
