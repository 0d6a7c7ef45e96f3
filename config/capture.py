"""Capture-specification profiles: what a scan's file must be (depth, ppi, ICC, format, size).

A profile (config/capture_profiles/NAME.yaml, or any YAML file by path) names the guideline it
follows and lists rules; each rule says whether missing it fails the scan or only warns. Rules
left out are not checked. tasks.qa.capture.check_capture applies a profile to one scan.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Severity = Literal["fail", "warn"]

# ICC header colour-space signatures (ICC.1 table 19) as we spell them: upper case, no padding.
ICC_COLOR_SPACES = frozenset(
    {"RGB", "GRAY", "CMYK", "CMY", "LAB", "XYZ", "LUV", "YCBCR", "YXY", "HSV", "HLS"}
)
# Names people write for the formats ingest reports (TechnicalMetadata.format).
_FORMAT_ALIASES = {"TIF": "TIFF", "JPG": "JPEG", "JPEG2000": "JP2", "JPEG 2000": "JP2", "JPX": "JP2"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rule(_Strict):
    severity: Severity = "fail"


class BitDepthRule(_Rule):
    min: int = Field(ge=1, le=32, description="Bits per channel.")


class PpiRule(_Rule):
    """Sampling rate in pixels per inch. Used for the file's own ppi and for the effective ppi."""

    min: float | None = Field(None, gt=0)
    max: float | None = Field(None, gt=0)
    # Guidelines state a nominal rate and an accepted shortfall (FADGI 2023: 1-5% by star level):
    # 400 ppi with 2% tolerance accepts 392.
    tolerance_pct: float = Field(0.0, ge=0, lt=50)
    # Verdict when the value cannot be known (no resolution tag; no catalogued physical size).
    # Defaults to `severity`.
    if_missing: Severity | Literal["skip"] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PpiRule:
        if self.min is None and self.max is None:
            raise ValueError("a ppi rule needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"ppi min {self.min} is above max {self.max}")
        return self

    @property
    def accepted_min(self) -> float | None:
        return None if self.min is None else self.min * (1 - self.tolerance_pct / 100)

    @property
    def accepted_max(self) -> float | None:
        return None if self.max is None else self.max * (1 + self.tolerance_pct / 100)

    @property
    def missing_verdict(self) -> Severity | Literal["skip"]:
        return self.if_missing or self.severity


class IccPresentRule(_Rule):
    """An embedded ICC profile is required (without one, colour values have no meaning)."""


class IccColorSpaceRule(_Rule):
    """The profile's header colour space must be one of these and fit the image's channels."""

    allowed: list[str] = Field(min_length=1)

    @field_validator("allowed")
    @classmethod
    def _known(cls, values: list[str]) -> list[str]:
        out = [v.strip().upper() for v in values]
        unknown = sorted(set(out) - ICC_COLOR_SPACES)
        if unknown:
            raise ValueError(f"unknown ICC colour space(s) {unknown}; known: {sorted(ICC_COLOR_SPACES)}")
        return out


class IccDescriptionRule(_Rule):
    """The profile must be one the guideline names, matched on its description ('desc' tag).

    Matching ignores case, spaces and punctuation and accepts a longer description that starts
    with the name: 'sRGB' matches 'sRGB IEC61966-2.1' and 'sRGB built-in'; 'eciRGB v2' matches
    'eciRGB_v2' and 'eciRGB v2 ICCv4'.
    """

    severity: Severity = "warn"
    allowed: list[str] = Field(min_length=1)


class FormatRule(_Rule):
    allowed: list[str] = Field(min_length=1)

    @field_validator("allowed")
    @classmethod
    def _canonical(cls, values: list[str]) -> list[str]:
        return [_FORMAT_ALIASES.get(v.strip().upper(), v.strip().upper()) for v in values]


class LongEdgeRule(_Rule):
    min: int = Field(ge=1, description="Pixels on the long edge.")


class CaptureRules(_Strict):
    format: FormatRule | None = None
    bit_depth: BitDepthRule | None = None
    ppi: PpiRule | None = None
    # long edge px / catalogued physical long edge in inches; needs the physical size.
    effective_ppi: PpiRule | None = None
    long_edge: LongEdgeRule | None = None
    icc_present: IccPresentRule | None = None
    icc_color_space: IccColorSpaceRule | None = None
    icc_description: IccDescriptionRule | None = None


class CaptureProfile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    source: str = Field(min_length=1, description="The guideline and section the rules follow.")
    rules: CaptureRules

    @model_validator(mode="after")
    def _has_rules(self) -> CaptureProfile:
        if not any(getattr(self.rules, name) is not None for name in CaptureRules.model_fields):
            raise ValueError("a capture profile needs at least one rule")
        return self


class CaptureProfileError(ValueError):
    pass


_PACKAGE = "config.capture_profiles"


def list_capture_profiles() -> list[str]:
    folder = resources.files(_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_capture_profile(name_or_path: str) -> CaptureProfile:
    """A packaged profile by name (config/capture_profiles/NAME.yaml) or a profile YAML by path."""
    path = Path(name_or_path)
    packaged = False
    if path.suffix in {".yaml", ".yml"} and path.is_file():
        text, origin = path.read_text(), str(path)
    else:
        resource = resources.files(_PACKAGE).joinpath(f"{name_or_path}.yaml")
        if not resource.is_file():
            raise CaptureProfileError(
                f"no capture profile named {name_or_path!r} (profiles: {', '.join(list_capture_profiles())}; "
                "or give the path of a capture profile .yaml file)"
            )
        text, origin, packaged = resource.read_text(), f"capture profile {name_or_path}", True
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CaptureProfileError(f"invalid capture profile in {origin}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        got = type(data).__name__
        raise CaptureProfileError(f"invalid capture profile in {origin}: expected a mapping of fields, got {got}")
    try:
        profile = CaptureProfile.model_validate(data)
    except ValidationError as exc:
        raise CaptureProfileError(f"invalid capture profile in {origin}: {_explain(exc)}") from exc
    if packaged and profile.name != name_or_path:  # the name in reports must be the one asked for
        raise CaptureProfileError(f"invalid capture profile in {origin}: its name is {profile.name!r}")
    return profile


def _explain(exc: ValidationError) -> str:
    """One line per problem, 'where: what' (rules.ppi.min: Input should be greater than 0)."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)
