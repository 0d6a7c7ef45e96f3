"""Runtime settings from the environment (RESTORIUM_*) and/or a YAML file, validated by pydantic.

Precedence: explicit arguments > environment > the file named by RESTORIUM_CONFIG > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _default_models_dir() -> Path:
    return platformdirs.user_cache_path("restorium") / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESTORIUM_", extra="forbid")

    home: Path = Field(Path("archive"), description="Archive root: catalog, masters, access copies, reports.")
    models_dir: Path = Field(default_factory=_default_models_dir, description="Where model weights live.")
    catalog_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite under the home.")
    ray_address: str | None = Field(None, description="Existing Ray cluster; default: start Ray locally.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(1, ge=1, description="Model actors (each holds its own copy of the models).")
    scans_in_flight: int = Field(
        2, ge=1, le=8, description="Scans each worker holds at once: one in the model, the others decoding, "
        "checking, finishing or writing meanwhile (the model runs one call at a time per device).")
    worker_threads: int | None = Field(
        None, ge=1, description="CPU threads per worker (default: the cluster's CPUs shared among workers).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Models' compute precision: auto = bf16 where the device computes it in hardware "
        "(CPUs with AVX512_BF16 or AMX, CUDA 8.0+), else fp32; fp16 on CUDA only. Recorded in every master.")
    tile: int | None = Field(
        None, ge=0, description="Model tile edge in input pixels; default per device: the recipe's on CPU, "
        "from free memory on CUDA (0: whole images). Tiles change no pixel beyond rounding.")
    gpus_per_worker: float = Field(0.5, gt=0, le=1, description="Fractional GPU per actor when CUDA is used.")
    shard_size: int = Field(32, ge=1, description="Scans per Prefect task and per catalog transaction.")
    max_pixels: int = Field(400_000_000, ge=1, description="Refuse images larger than this (decompression bombs).")
    max_decoded_bytes: int = Field(
        3_200_000_000, ge=1, description="Refuse images whose header promises more decoded bytes than this "
        "(16-bit RGBA at the pixel limit by default): checked with max_pixels before any decoder allocates.")
    failure_budget: float = Field(
        0.2, ge=0, le=1, description="Stop the run when more than this share of the first scans processed "
        "fail while processing (invalid files do not count): a misconfiguration, not bad scans.")
    failure_budget_sample: int = Field(
        4, ge=1, description="Scans processed before the failure budget is judged (over as many shards as that "
        "takes; never in a smaller run): a few failing scans of a small run are bad scans, not a "
        "misconfiguration.")
    capture_profile: str | None = Field(
        None, description="Capture-spec profile (name or YAML path) the QA gate enforces; none by default.")
    iiif_base_url: str | None = Field(
        None, description="Where the archive's iiif/ folder is published (e.g. https://images.example.org/iiif): "
        "each run then writes IIIF level-0 tiles of every master and its scan there, recorded as files. "
        "None: no tiles at run time (export iiif and the review app make their own).")
    signing_cert: Path | None = Field(
        None, description="Content credentials (`run --sign`): the signing certificate chain, PEM, end-entity "
        "first (its key usage must include emailProtection).")
    signing_key: Path | None = Field(
        None, description="Content credentials: the unencrypted PEM private key of signing_cert (owner-only).")
    signing_tsa_url: str | None = Field(
        None, description="Content credentials: an RFC 3161 time-stamp server, so a signature stays verifiable "
        "after its certificate expires.")
    signing_trust_anchors: Path | None = Field(
        None, description="PEM CA certificates `audit` trusts when it verifies content credentials (an "
        "institution's own CA); others verify as 'untrusted issuer'.")
    review_cache_mb: int = Field(
        2048, ge=0, description="Budget of the review app's preview cache (MiB): least recently viewed files "
        "go first; 0 keeps only the files on screen.")

    @model_validator(mode="after")
    def _signing_pair(self) -> Settings:
        if (self.signing_cert is None) != (self.signing_key is None):
            raise ValueError("signing_cert and signing_key go together (RESTORIUM_SIGNING_CERT, RESTORIUM_SIGNING_KEY)")
        return self

    @field_validator("home", "models_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("RESTORIUM_CONFIG")
        if config_file:
            path = Path(config_file).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"RESTORIUM_CONFIG names {path}, which is not a file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    # Derived locations: one place decides the archive's layout.
    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.home / 'catalog.sqlite'}"

    @property
    def masters_dir(self) -> Path:
        return self.home / "masters"

    @property
    def access_dir(self) -> Path:
        return self.home / "access"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def reviews_dir(self) -> Path:
        return self.home / "reviews"


# The variable name that carries the config file, documented in the README.
CONFIG_ENV = "RESTORIUM_CONFIG"
