"""Does a scan meet its capture specification? One verdict per profile rule, with the numbers.

Pure: header facts (TechnicalMetadata), the raw ICC bytes and a profile in, a CaptureCheck out.
Each rule reports what was measured and the limit, in words a digitization person reads
("ppi 300 < 400 required by fadgi-3star-photo"). A rule whose input is unknown (no ppi tag, no
catalogued size) says so instead of guessing.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from PIL import ImageCms

from config.capture import (
    BitDepthRule,
    CaptureProfile,
    FormatRule,
    IccPresentRule,
    LongEdgeRule,
    PpiRule,
    Severity,
)
from tasks.records.types import TechnicalMetadata

RuleVerdict = Literal["pass", "warn", "fail", "skipped"]
_RANK = {"skipped": 0, "pass": 0, "warn": 1, "fail": 2}
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class RuleResult:
    rule: str
    verdict: RuleVerdict  # "skipped": the rule could not be applied (and does not count)
    measured: Any
    limit: Any
    message: str


@dataclass
class CaptureCheck:
    profile: str
    verdict: Literal["pass", "warn", "fail"]
    results: list[RuleResult] = field(default_factory=list)

    @property
    def problems(self) -> list[RuleResult]:
        return [r for r in self.results if r.verdict in ("warn", "fail")]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IccInfo:
    color_space: str | None  # header signature, upper case without padding: RGB, GRAY, LAB…
    description: str | None
    error: str | None = None  # why the bytes are not a usable profile


def read_icc(icc: bytes) -> IccInfo:
    """Colour space from the header (bytes 16-20) and the description via LittleCMS."""
    if len(icc) < 128 or icc[36:40] != b"acsp":  # 'acsp' is the ICC file signature
        return IccInfo(None, None, f"not an ICC profile ({len(icc)} bytes, no 'acsp' signature)")
    space = icc[16:20].decode("ascii", "replace").strip().upper()
    try:
        description = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.profile_description or None
    except (OSError, ImageCms.PyCMSError, ValueError, TypeError) as exc:
        return IccInfo(space, None, f"ICC profile unreadable by LittleCMS ({exc})")
    return IccInfo(space, description.strip() if description else None)


def check_capture(
    tech: TechnicalMetadata,
    icc: bytes | None,
    profile: CaptureProfile,
    *,
    physical_long_edge_mm: float | None = None,
) -> CaptureCheck:
    """Apply every rule the profile sets; the verdict is the worst of the rule verdicts."""
    rules = profile.rules
    name = profile.name
    results: list[RuleResult] = []
    info = read_icc(icc) if icc else None

    if rules.format:
        results.append(_format_result(tech, rules.format, name))
    if rules.bit_depth:
        results.append(_bit_depth_result(tech, rules.bit_depth, name))
    if rules.ppi:
        results.append(_ppi_result("ppi", "ppi", tech.ppi, rules.ppi, name,
                                   missing="no resolution (ppi) recorded in the file"))
    if rules.effective_ppi:
        results.append(_effective_ppi_result(tech, rules.effective_ppi, name, physical_long_edge_mm))
    if rules.long_edge:
        results.append(_long_edge_result(tech, rules.long_edge, name))
    if rules.icc_present:
        results.append(_icc_present_result(tech, icc, rules.icc_present, name))
    if rules.icc_color_space:
        results.append(_color_space_result(tech, icc, info, rules.icc_color_space.allowed,
                                           rules.icc_color_space.severity, name))
    if rules.icc_description:
        results.append(_description_result(icc, info, rules.icc_description.allowed,
                                           rules.icc_description.severity, name))

    verdict: RuleVerdict = max((r.verdict for r in results), key=_RANK.__getitem__, default="pass")
    return CaptureCheck(profile=name, verdict="pass" if verdict == "skipped" else verdict, results=results)


def _long_edge(tech: TechnicalMetadata) -> int:
    return max(tech.width, tech.height)


def _format_result(tech: TechnicalMetadata, fmt: FormatRule, name: str) -> RuleResult:
    ok = tech.format.upper() in fmt.allowed
    return RuleResult(
        "format", "pass" if ok else fmt.severity, tech.format, fmt.allowed,
        f"format {tech.format} {'is' if ok else 'is not'} allowed by {name} (allowed: {', '.join(fmt.allowed)})",
    )


def _bit_depth_result(tech: TechnicalMetadata, depth: BitDepthRule, name: str) -> RuleResult:
    ok = tech.bit_depth >= depth.min
    return RuleResult(
        "bit_depth", "pass" if ok else depth.severity, tech.bit_depth, depth.min,
        f"bit depth {tech.bit_depth} per channel {'≥' if ok else '<'} {depth.min} {_required(depth.severity)} by {name}",
    )


def _effective_ppi_result(tech: TechnicalMetadata, rule: PpiRule, name: str,
                          physical_long_edge_mm: float | None) -> RuleResult:
    """The pixels per inch of the object itself: the long edge over its catalogued physical size."""
    long_edge = _long_edge(tech)
    effective = None
    if physical_long_edge_mm and physical_long_edge_mm > 0:
        effective = round(long_edge / (physical_long_edge_mm / MM_PER_INCH), 1)
    return _ppi_result(
        "effective_ppi", "effective ppi", effective, rule, name,
        missing="no catalogued physical size, so the effective ppi is unknown",
        detail=f" ({long_edge} px over a {physical_long_edge_mm:g} mm long edge)" if effective else "",
    )


def _long_edge_result(tech: TechnicalMetadata, edge: LongEdgeRule, name: str) -> RuleResult:
    long_edge = _long_edge(tech)
    ok = long_edge >= edge.min
    return RuleResult(
        "long_edge", "pass" if ok else edge.severity, long_edge, edge.min,
        f"long edge {long_edge} px {'≥' if ok else '<'} {edge.min} px {_required(edge.severity)} by {name}",
    )


def _icc_present_result(tech: TechnicalMetadata, icc: bytes | None, icc_rule: IccPresentRule,
                        name: str) -> RuleResult:
    present = bool(icc) or tech.has_icc
    return RuleResult(
        "icc_present", "pass" if present else icc_rule.severity, present, True,
        "ICC profile embedded" if present else f"no ICC profile embedded; one is {_required(icc_rule.severity)} by {name}",
    )


def _required(severity: str) -> str:
    # "required" when falling short fails the scan, "recommended" when it only warns.
    return "required" if severity == "fail" else "recommended"


def _fmt(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _ppi_result(rule: str, label: str, value: float | None, r: PpiRule, name: str, *,
                missing: str, detail: str = "") -> RuleResult:
    limit = {"min": r.min, "max": r.max, "tolerance_pct": r.tolerance_pct}
    bounds = [f"≥ {_fmt(r.min)}" if r.min is not None else "", f"≤ {_fmt(r.max)}" if r.max is not None else ""]
    wanted = " and ".join(b for b in bounds if b)
    if value is None:
        verdict = r.missing_verdict
        return RuleResult(rule, "skipped" if verdict == "skip" else verdict, None, limit,
                          f"{missing}; {name} wants {label} {wanted}")

    def tolerance(accepted: float | None) -> str:
        if not (r.tolerance_pct and accepted):
            return ""
        return f" ({_fmt(accepted)} accepted with its {r.tolerance_pct:g}% tolerance)"

    measured = f"{label} {_fmt(value)}{detail}"
    if r.min is not None and r.accepted_min is not None and value < r.accepted_min - 1e-9:
        message = f"{measured} < {_fmt(r.min)} {_required(r.severity)} by {name}{tolerance(r.accepted_min)}"
    elif r.max is not None and r.accepted_max is not None and value > r.accepted_max + 1e-9:
        message = f"{measured} > {_fmt(r.max)}, the most {name} allows{tolerance(r.accepted_max)}"
    else:
        return RuleResult(rule, "pass", value, limit, f"{measured} meets {wanted} of {name}")
    return RuleResult(rule, r.severity, value, limit, message)


def _color_channels(tech: TechnicalMetadata) -> str:
    # alpha does not count: gray+alpha (2) is gray, RGBA (4) is RGB
    return "GRAY" if tech.channels in (1, 2) else "RGB"


def _color_space_result(tech: TechnicalMetadata, icc: bytes | None, info: IccInfo | None,
                        allowed: list[str], severity: Severity, name: str) -> RuleResult:
    if not icc or info is None:
        # Nothing to read; absence itself is icc_present's to judge (one cause, one finding).
        why = "ICC bytes not supplied" if tech.has_icc else "no ICC profile embedded"
        return RuleResult("icc_color_space", "skipped", None, allowed,
                          f"{why}, so its colour space cannot be checked against {name}")
    if info.color_space is None:
        return RuleResult("icc_color_space", severity, None, allowed, f"{info.error}; {name} needs a readable profile")
    image_space = _color_channels(tech)
    if info.color_space not in allowed:
        message = f"ICC colour space {info.color_space} is not allowed by {name} (allowed: {', '.join(allowed)})"
        return RuleResult("icc_color_space", severity, info.color_space, allowed, message)
    if info.color_space != image_space:
        message = (f"ICC colour space {info.color_space} does not fit a {tech.channels}-channel "
                   f"{image_space} image (viewers will ignore or misapply it)")
        return RuleResult("icc_color_space", severity, info.color_space, allowed, message)
    return RuleResult("icc_color_space", "pass", info.color_space, allowed,
                      f"ICC colour space {info.color_space} is allowed by {name}")


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def description_matches(description: str, allowed: list[str]) -> str | None:
    """The allowed name the description matches (ignoring case, spaces, punctuation), or None."""
    got = _normalise(description)
    for name in allowed:
        want = _normalise(name)
        if want and got.startswith(want):
            return name
    return None


def _description_result(icc: bytes | None, info: IccInfo | None, allowed: list[str],
                        severity: Severity, name: str) -> RuleResult:
    if not icc or info is None:
        return RuleResult("icc_description", "skipped", None, allowed,
                          "no ICC profile bytes, so its description cannot be checked")
    if not info.description:
        why = info.error or "the ICC profile has no description"
        return RuleResult("icc_description", severity, None, allowed, f"{why}; {name} names {', '.join(allowed)}")
    match = description_matches(info.description, allowed)
    if match:
        return RuleResult("icc_description", "pass", info.description, allowed,
                          f"ICC profile '{info.description}' is {match}, named by {name}")
    return RuleResult("icc_description", severity, info.description, allowed,
                      f"ICC profile '{info.description}' is not one {name} names ({', '.join(allowed)})")
