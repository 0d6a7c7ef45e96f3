"""One declarative spec per architecture: how to build it, read its weights, and tile it.

Loading and weights code look a card's spec up (`spec_for`) instead of branching on its name, so a
new architecture is one entry in ARCHITECTURES. Light on purpose (no torch at import): models.weights
imports this, and the frameworks are imported inside the builders and checkers only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.cards import ModelCard
from models.torch_compat import ensure_basicsr_importable

if TYPE_CHECKING:
    from torch import nn

# Where a checkpoint may hold its state dict when the card's params_key is absent: the same weights
# circulate in several wrappings; 'params_ema' first, it is what inference should use.
CHECKPOINT_KEYS = ("params_ema", "params", "state_dict")


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str
    # The network with fresh weights, from the card's arch_kwargs; None: not a torch network.
    build: Callable[..., nn.Module] | None
    # Raises ValueError (message without the path) when the file is not a model OpenCV can run;
    # set for ONNX networks, which have no state dict to load strictly.
    check_onnx: Callable[[Path], None] | None = None
    checkpoint_keys: tuple[str, ...] = CHECKPOINT_KEYS
    # Input pixels an output pixel sees, from arch_kwargs; None: too far to pad tiles by.
    receptive_radius: Callable[[dict[str, Any]], int | None] = lambda kw: None
    # The pixel-unshuffle grid input sizes and tile offsets must keep, from the card's scale.
    input_multiple: Callable[[int], int] = lambda scale: 1

    def __post_init__(self) -> None:
        if (self.build is None) == (self.check_onnx is None):
            raise ValueError(f"architecture {self.name!r}: give either build (torch) or check_onnx (OpenCV)")

    @property
    def torch_state_dict(self) -> bool:
        return self.build is not None


def _srvgg(**kwargs: Any) -> nn.Module:
    ensure_basicsr_importable()
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    return SRVGGNetCompact(**kwargs)


def _rrdb(**kwargs: Any) -> nn.Module:
    ensure_basicsr_importable()
    from basicsr.archs.rrdbnet_arch import RRDBNet

    return RRDBNet(**kwargs)


def _ffdnet(**kwargs: Any) -> nn.Module:
    from models.ffdnet import FFDNet

    return FFDNet(**kwargs)


def _damage_unet(**kwargs: Any) -> nn.Module:
    from models.damage import DamageUNet

    return DamageUNet(**kwargs)


def unet_radius(kw: dict[str, Any]) -> int:
    """DamageUNet's reach: 2 px per pair of 3x3 convolutions at each level's pixel pitch, down and
    up, plus 1 px of pitch per max-pool and per 2x2 transposed convolution between levels, plus the
    top-hat features' opening and closing (k - 1 px for a k x k square)."""
    levels = int(kw.get("levels", 3))
    convs = sum(2 * 2**i for i in range(levels)) + sum(2 * 2**i for i in range(levels - 1))
    tophat = max((int(k) - 1 for k in kw.get("tophat", ())), default=0)
    return convs + 2 * sum(2**i for i in range(levels - 1)) + tophat


def _check_yunet(path: Path) -> None:
    import cv2

    try:
        cv2.FaceDetectorYN.create(str(path), "", (320, 320))
    except cv2.error as exc:
        raise ValueError(f"not a YuNet ONNX model OpenCV can load ({exc})") from exc


ARCHITECTURES: dict[str, ArchitectureSpec] = {spec.name: spec for spec in (
    # One pixel per 3x3 conv (num_conv + 2 of them); the nearest-upsampled residual adds none.
    ArchitectureSpec("SRVGGNetCompact", _srvgg,
                     receptive_radius=lambda kw: int(kw.get("num_conv", 16)) + 2),
    # Receptive field ~350 px: see models.loading.RRDB_CONTEXT. basicsr unshuffles x2 input by 2
    # and x1 by 4.
    ArchitectureSpec("RRDBNet", _rrdb, input_multiple=lambda scale: {1: 4, 2: 2}.get(scale, 1)),
    # nb convs at half resolution plus the 2x2 unshuffle block. It pads odd sizes itself, but tile
    # offsets must keep the 2x2 grid phase to match untiled output.
    ArchitectureSpec("FFDNet", _ffdnet, receptive_radius=lambda kw: 2 * int(kw.get("nb", 12)) + 1,
                     input_multiple=lambda scale: 2),
    ArchitectureSpec("YuNet", None, check_onnx=_check_yunet),  # run by OpenCV's FaceDetectorYN
    # models.damage: pads to its own 2^(levels-1) grid, at most 8 (4 levels); tiles keep an 8 px grid.
    ArchitectureSpec("DamageUNet", _damage_unet, receptive_radius=unet_radius, input_multiple=lambda scale: 8),
)}


def spec_for(card: ModelCard, *, buildable: bool = False) -> ArchitectureSpec:
    """The card's spec; buildable=True also refuses one that is not a torch network (same error)."""
    spec = ARCHITECTURES.get(card.architecture)
    if spec is None or (buildable and spec.build is None):
        raise ValueError(f"model {card.name!r}: no builder for architecture {card.architecture!r}")
    return spec
