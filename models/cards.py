"""The model registry: one card per model we know how to build, load and (maybe) download.

A card says what a weights file *should* be. What a master was actually made with is recorded
separately, from the file that was loaded (models.weights.ResolvedWeights.sha256).

`sha256` on a card is the publisher's file as downloaded from `url`; it is used only to verify a
`fetch`. A local file may legitimately differ (e.g. the development copies in ../shared/models are
converted from the publisher's ncnn export) and still be used: provenance records its own hash.
The published hashes below are the ones several independent projects pin for these release
assets; they could not be re-checked from the offline build machine.

This module is light on purpose (no torch): the CLI lists models without loading any.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Task = Literal["upscale", "denoise", "detect", "segment"]
Architecture = Literal["SRVGGNetCompact", "RRDBNet", "FFDNet", "YuNet", "DamageUNet"]
ParamsKey = Literal["params_ema", "params"] | None
Training = Literal["gan", "fidelity"]

_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_REALESRGAN_LICENCE = "BSD-3-Clause"  # Real-ESRGAN code and released weights (Xintao Wang et al.)


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: Task
    architecture: Architecture
    # Keyword arguments of the architecture's constructor (a plain dict so cards pickle for Ray).
    arch_kwargs: dict[str, Any] = field(hash=False)
    scale: int  # output size / input size; 1 for denoisers
    filename: str
    url: str | None  # official download; None: the user imports the file
    sha256: str | None  # the published file at `url`, verified on fetch only
    licence: str
    params_key: ParamsKey  # key of the state dict inside the checkpoint; None: a plain state dict
    description: str
    # For weights nobody publishes: the command that makes them (shown when they are missing).
    make_command: str | None = None
    # How an upscaler was trained: "gan" (adversarial + perceptual losses: sharp, invents plausible
    # texture, may drift in colour) or "fidelity" (a pixel loss: the most probable image). The
    # planner pulls only a GAN model's result back onto the scan (finish.gan_corrections_only).
    training: Training | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "task": self.task, "architecture": self.architecture,
            "arch_kwargs": dict(self.arch_kwargs), "scale": self.scale, "filename": self.filename,
            "url": self.url, "sha256": self.sha256, "licence": self.licence,
            "params_key": self.params_key, "description": self.description, "make_command": self.make_command,
            "training": self.training,
        }


_CARD_LIST: tuple[ModelCard, ...] = (
    ModelCard(
        name="realesr-general-x4v3",
        task="upscale",
        architecture="SRVGGNetCompact",
        arch_kwargs={"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 32, "upscale": 4,
                     "act_type": "prelu"},
        scale=4,
        filename="realesr-general-x4v3.pth",
        url=f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
        sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        licence=_REALESRGAN_LICENCE,
        params_key="params",
        training="gan",
        description="Real-ESRGAN general-purpose compact x4 model for real photos; the CPU default "
                    "(~0.15 MFLOP per output pixel).",
    ),
    ModelCard(
        name="realesr-animevideov3",
        task="upscale",
        architecture="SRVGGNetCompact",
        arch_kwargs={"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 4,
                     "act_type": "prelu"},
        scale=4,
        filename="realesr-animevideov3.pth",
        url=f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
        # The published asset (2,504,012 bytes). ../shared/models has a 2,334,339-byte re-save with
        # another hash (4e1e09ba...), though MODELS.md calls it the original release file.
        sha256="b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
        licence=_REALESRGAN_LICENCE,
        params_key="params",
        training="gan",
        description="Real-ESRGAN extra-small compact x4 model for animation and line art; fastest.",
    ),
    ModelCard(
        name="RealESRGAN_x4plus",
        task="upscale",
        architecture="RRDBNet",
        arch_kwargs={"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23, "num_grow_ch": 32,
                     "scale": 4},
        scale=4,
        filename="RealESRGAN_x4plus.pth",
        url=f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        licence=_REALESRGAN_LICENCE,
        params_key="params_ema",
        training="gan",
        description="Real-ESRGAN x4plus (RRDBNet, the large GAN model); ~2.2 MFLOP per output pixel: "
                    "for GPUs.",
    ),
    ModelCard(
        name="RealESRGAN_x2plus",
        task="upscale",
        architecture="RRDBNet",
        arch_kwargs={"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23, "num_grow_ch": 32,
                     "scale": 2},
        scale=2,
        filename="RealESRGAN_x2plus.pth",
        url=f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        licence=_REALESRGAN_LICENCE,
        params_key="params_ema",
        training="gan",
        description="Real-ESRGAN x2plus (RRDBNet at native x2: input pixel-unshuffled); for GPUs.",
    ),
    ModelCard(
        name="ffdnet_color",
        task="denoise",
        architecture="FFDNet",
        arch_kwargs={"in_nc": 3, "out_nc": 3, "nc": 96, "nb": 12},
        scale=1,
        filename="ffdnet_color.pth",
        # The authors publish MatConvNet weights; this PyTorch conversion has no official download.
        url=None,
        sha256=None,
        licence="research release, no licence file",  # authors' release: development and evaluation
        params_key=None,
        description="FFDNet colour denoiser (Zhang et al. 2018, KAIR layout) with a noise-level input: "
                    "denoise strength is a parameter (sigma on the 0-255 scale). The authors' research "
                    "release carries no licence file: for development and evaluation.",
    ),
)

_CARD_LIST += (
    ModelCard(
        name="face_detection_yunet",
        task="detect",
        architecture="YuNet",
        arch_kwargs={},
        scale=1,
        filename="face_detection_yunet.onnx",
        # OpenCV Zoo's release; the development copy's origin is not verified (MODELS.md), so no
        # published hash is pinned: provenance records the sha256 of the file actually used.
        url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx",
        sha256=None,
        licence="MIT (OpenCV Zoo)",
        params_key=None,
        description="YuNet face detector (ONNX, run by OpenCV's FaceDetectorYN): finds faces so the "
                    "portrait recipe can keep them closer to the scan.",
    ),
)

# The archival upscaler: the general compact network with weights each site makes itself.
_CARD_LIST += (
    replace(
        _CARD_LIST[0],  # realesr-general-x4v3: same architecture and checkpoint layout
        name="restorium-fidelity-x4v3",
        filename="restorium-fidelity-x4v3.pth",
        url=None,  # made locally from realesr-general-x4v3 and the team's own clean photographs
        sha256=None,
        licence=_REALESRGAN_LICENCE + " (derived from realesr-general-x4v3)",
        description="realesr-general-x4v3 fine-tuned for fidelity (L1 loss) on degraded copies of clean "
                    "photographs: the archival preset's upscaler when present.",
        make_command="restorium models finetune PHOTOS... (clean photographs; ~2.5 min on a 2-core CPU)",
        training="fidelity",
    ),
)

# The damage detector: a small U-Net each site trains itself (models.damage_training).
_CARD_LIST += (
    ModelCard(
        name="restorium-damage-unet",
        task="segment",
        architecture="DamageUNet",
        arch_kwargs={"in_ch": 3, "base": 16, "levels": 3, "norm": True, "tophat": (3, 5, 9)},
        scale=1,
        filename="restorium-damage-unet.pth",
        url=None,  # trained here; nobody publishes it
        sha256=None,
        licence="BSD-3-Clause (restorium's own)",
        params_key="params",
        description="Scratch, fibre and dust segmentation (a small U-Net) trained here on synthetic damage "
                    "drawn over clean photographs (tasks.demo.damage): the damage mask for cleanup.",
        make_command="restorium models prepare PHOTOS... --only restorium-damage-unet (~9 min on 2 cores)",
    ),
)

CARDS: dict[str, ModelCard] = {card.name: card for card in _CARD_LIST}


class UnknownModelError(LookupError):
    """A model name that is neither a card nor an imported model (not a KeyError: that repr()s)."""


def known_names() -> list[str]:
    return sorted(CARDS)


def get_card(name: str) -> ModelCard:
    try:
        return CARDS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(known_names())} "
            "(or import your own: restorium models import PATH --name NAME --like KNOWN)"
        ) from None
