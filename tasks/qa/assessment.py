"""Quality assessment: the diagnosis of a decoded scan, and a verdict with a reason per problem.

The findings come from tasks.qa.diagnosis (blur type and extent, noise, scratches and dust, JPEG
blocking, clipping, contrast, colour cast, skew, perceptual hash); each finding over its
calibrated threshold (documented where it is measured) adds a human-readable reason and makes
the verdict "warn". A file that does not decode never reaches this stage: imageio.decode fails
it with its reason ("fail" is reserved for that, and for capture-specification rules).

`report.findings["noise_sigma"]` (0-255, per channel) drives the planner's denoising and
`report.problems` (the flags below, one per reason) its other decisions; `report.to_dict()` is
stored as the quality-assessment event and in the master's XMP, so the findings are plain JSON.
The scratch mask travels beside them, for an inpainting step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tasks.files.imageio import DecodedImage
from tasks.qa.diagnosis import Diagnosis, blur, diagnose, jpeg, noise, skew, tone

_CHANNELS = ("red", "green", "blue")

# Problem flags, one per kind of reason (tasks.steps.plan acts on several of them).
MOTION_BLUR, DEFOCUS_BLUR, NOISY = "motion_blur", "defocus_blur", "noisy"
SCRATCHES, DUST, FADED, CAST = "scratches", "dust", "faded", "color_cast"
SKEWED, JPEG_BLOCKING = "skewed", "jpeg_blocking"
CLIPPED_HIGHLIGHTS, CLIPPED_SHADOWS = "clipped_highlights", "clipped_shadows"


@dataclass
class QAReport:
    verdict: Literal["pass", "warn", "fail"]
    reasons: list[str] = field(default_factory=list)
    findings: dict = field(default_factory=dict)
    problems: frozenset[str] = frozenset()  # flags of the reasons (see above); not serialised
    scratch_mask: np.ndarray | None = None  # bool H x W at full resolution; not serialised
    speck_mask: np.ndarray | None = None  # the specks of scratch_mask, filled as found; not serialised

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "findings": self.findings}


def _clipping_reason(kind: str, shares: list[float]) -> str | None:
    over = [(share, i) for i, share in enumerate(shares) if share > tone.CLIPPED_SHARE]
    if not over:
        return None
    if len(shares) == 1:
        return f"clipped {kind}: {over[0][0] * 100:.1f} % of pixels"
    parts = ", ".join(f"{share * 100:.1f} % of {_CHANNELS[i]}" for share, i in sorted(over, reverse=True))
    return f"clipped {kind}: {parts}"


def problems_for(diagnosis: Diagnosis) -> list[tuple[str, str]]:
    """(flag, sentence) per finding over its threshold."""
    f = diagnosis.findings
    found: list[tuple[str, str]] = []
    blur = f["blur"]
    if blur["type"] == "motion":
        found.append((MOTION_BLUR, f"motion blur: {blur['length_px']:.0f} px at {blur['angle_deg']:.0f}°"))
    elif blur["type"] == "defocus":
        found.append((DEFOCUS_BLUR, f"defocus blur: sigma {blur['sigma_px']:.1f} px"))
    if f["noise_sigma"] > noise.NOISY_SIGMA:
        found.append((NOISY, f"noisy: sigma {f['noise_sigma']:.1f}"))
    found.extend(_damage_reasons(f))
    if f["contrast"] < tone.FADED_CONTRAST:
        found.append((FADED, f"faded: contrast {f['contrast']:.2f}"))
    cast = f["color_cast"]
    if tone.cast_is_reported(cast, diagnosis.chroma_spread):
        toned = " (a toned monochrome print: its hue follows lightness)" if tone.is_toned_print(cast) else ""
        found.append((CAST, f"colour cast: Δab {cast['magnitude']:.1f} toward {tone.hue_name(cast['a'], cast['b'])}"
                            + toned))
    if abs(f["skew_deg"]) >= skew.SKEWED_DEG:
        found.append((SKEWED, f"skewed: {f['skew_deg']:.1f}°"))
    if f["jpeg_blockiness"] > jpeg.BLOCKY:
        found.append((JPEG_BLOCKING, f"JPEG blocking {f['jpeg_blockiness']:.2f}"))
    for flag, kind, key in ((CLIPPED_HIGHLIGHTS, "highlights", "white"), (CLIPPED_SHADOWS, "shadows", "black")):
        reason = _clipping_reason(kind, f["clipping"][key])
        if reason:
            found.append((flag, reason))
    return found


def _damage_reasons(f: dict) -> list[tuple[str, str]]:
    """Scratches and dust: the classical detector's lines and specks, then the learned detector's
    components when it ran (findings["damage"]): the cleanup fills both."""
    found = []
    s = f["scratches"]
    if s["count"]:
        lines = f"{s['count']} line" + ("s" if s["count"] != 1 else "")
        opaque = s.get("opaque_specks", 0)  # findings recorded before 2026-12-03 lack it
        specks = (f", {opaque} opaque speck" + ("s" if opaque != 1 else "")) if opaque else ""
        found.append((SCRATCHES, f"scratches: {s['coverage'] * 100:.2f} % of pixels ({lines}{specks})"))
    elif s.get("opaque_specks"):  # no scratch line, but dust that stands out (findings since 2026-12-07)
        found.append((DUST, f"dust: {s['opaque_specks']} opaque specks, {s['dust_standing_out']} standing out "
                            f"({s['coverage'] * 100:.2f} % of pixels)"))
    learned = f.get("damage")
    if learned is not None:
        coverage = f"{learned['coverage'] * 100:.2f} % of pixels, {learned['model']}"
        if learned["lines"]:
            lines = f"{learned['lines']} line" + ("s" if learned["lines"] != 1 else "")
            found.append((SCRATCHES, f"scratches: {lines} ({coverage})"))
        if learned["specks"]:
            found.append((DUST, f"dust: {learned['specks']} specks" + ("" if learned["lines"] else f" ({coverage})")))
    return found


# What of the learned detector's report becomes a finding (its timings and execution go into the
# QA step's parameters instead: findings are the same for the same scan).
DAMAGE_FINDINGS = ("damaged", "lines", "specks", "coverage", "threshold", "seed_threshold", "min_area", "views",
                   "model", "weights_sha256")


def assess(image: DecodedImage, damage: tuple[np.ndarray, dict] | None = None) -> QAReport:
    """`damage`: the learned detector's (mask, report) for this scan, when it ran; its mask is then
    added to the classical one for cleanup (both findings are kept). Each finds what the other
    misses (straight light lines and near-black dust; curved, dark and wide marks), at a precision
    of 0.75 and 0.94 on bench/diagnosis.py --only damage --quick (together 0.89)."""
    diagnosis = diagnose(image)
    mask, specks = diagnosis.scratch_mask, diagnosis.speck_mask
    if damage is not None:
        mask, specks = add_learned_mask(mask, specks, damage[0])
        diagnosis.findings["damage"] = {key: damage[1][key] for key in DAMAGE_FINDINGS if key in damage[1]}
    found = problems_for(diagnosis)
    return QAReport(
        verdict="warn" if found else "pass", reasons=[text for _, text in found], findings=diagnosis.findings,
        problems=frozenset(flag for flag, _ in found), scratch_mask=mask, speck_mask=specks,
    )


def add_learned_mask(mask: np.ndarray | None, specks: np.ndarray | None,
                     learned: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classical (mask, specks filled as found) with the learned detector's mask added: the
    classical specks stay filled as found, what the learned mask covers grows whole."""
    if not learned.any():
        return mask, specks
    return (learned if mask is None else mask | learned), (None if specks is None else specks & ~learned)


def thresholds() -> dict[str, float | list[float]]:
    """The thresholds above (or below) which a finding is reported, keyed as the QA report's
    histogram panels are: drawn on them so a person sees where the line is."""

    return {
        "noise_sigma": noise.NOISY_SIGMA,
        "blur.score": blur.BLURRED_SCORE,
        "contrast": tone.FADED_CONTRAST,
        "color_cast.magnitude": tone.CAST_DELTA_AB,
        "skew_deg": [-skew.SKEWED_DEG, skew.SKEWED_DEG],
        "jpeg_blockiness": jpeg.BLOCKY,
    }
