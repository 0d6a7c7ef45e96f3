"""Build a card's network and load its weights strictly; what the tiler needs to know about it.

The per-architecture facts (builders, checkpoint keys, tiling) are models.architectures' specs;
basicsr/realesrgan are imported lazily, inside those builders (see models.torch_compat).
Checkpoints are read with `weights_only=True`: a .pth is a pickle, and a downloaded or imported
file must not be able to run code when it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.architectures import spec_for
from models.cards import ModelCard

# RRDBNet's theoretical receptive field is ~350 input pixels (23 blocks x 15 convs); padding every
# tile by that would make tiles mostly context. Its effective reach is shorter. Measured with the
# x4plus weights on a real photo (tile 48, overlap 8), max |tiled - untiled| in 1/255 units:
# context 8: 30.6, 16: 17.7, 24: 11.1, 32: 4.9, 48: 1.04, 64: 0.30. (RealESRGANer's default
# tile_pad of 10 leaves visible seams.) 64 costs (256+128)^2/256^2 = 2.25x at tile 256, 1.56x at
# 512: use large tiles on GPUs. Not measured for x2plus (no weights here).
RRDB_CONTEXT = 64


class WeightsLoadError(ValueError):
    """A weights file that cannot be read or does not fit the card's architecture."""


def set_threads(threads: int) -> None:
    """The CPU threads torch computes with in this process (a worker's share of the cores)."""
    torch.set_num_threads(threads)


def select_device(preference: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' (or 'cuda:N') insists, and says why it cannot."""
    if preference == "cpu":
        return torch.device("cpu")
    is_cuda = preference == "cuda" or preference.startswith("cuda:")
    if is_cuda or preference == "auto":
        if torch.cuda.is_available():
            return torch.device(preference if is_cuda else "cuda")
        if is_cuda:
            raise RuntimeError(
                f"device 'cuda' was asked for but torch {torch.__version__} sees no CUDA device "
                "(set device to 'auto' or 'cpu')"
            )
        return torch.device("cpu")
    raise ValueError(f"unknown device {preference!r}: expected 'auto', 'cpu' or 'cuda'")


def instantiate(card: ModelCard) -> nn.Module:
    """The card's architecture with fresh (random) weights."""
    build = spec_for(card, buildable=True).build
    assert build is not None  # buildable=True
    return build(**dict(card.arch_kwargs))


def read_state_dict(card: ModelCard, weights_path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, under the card's params_key when present.

    Fallbacks, because the same weights circulate in several wrappings: the spec's checkpoint_keys
    (models.architectures.CHECKPOINT_KEYS), or a plain state dict; a DataParallel 'module.' prefix
    is stripped.
    """
    path = Path(weights_path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise WeightsLoadError(f"{path}: not a readable PyTorch tensor checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict):
        raise WeightsLoadError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    state: Any = ckpt
    for key in (card.params_key, *spec_for(card).checkpoint_keys):
        if key and isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    if not state or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsLoadError(
            f"{path}: no state dict found (top-level keys: {', '.join(map(str, list(ckpt)[:8]))})"
        )
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def build_network(card: ModelCard, weights_path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The card's network with the file's weights loaded strictly, in eval mode, on `device`."""
    net = instantiate(card)
    state = read_state_dict(card, weights_path)
    problems = _state_dict_problems(net.state_dict(), state)
    if problems:
        raise WeightsLoadError(
            f"{weights_path}: does not fit {card.architecture}({_kwargs_text(card)}) of model "
            f"{card.name!r}: {problems}"
        )
    net.load_state_dict(state, strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    device = device if isinstance(device, torch.device) else select_device(device)
    return net.to(device)


def _state_dict_problems(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """A short account of why `found` does not load strictly ('' when it does); torch's own
    message lists every key, hundreds of lines for a wrong RRDBNet."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in found and found[k].shape != v.shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({some(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (file vs model: {some(shapes)})")
    return "; ".join(parts)


def receptive_radius(card: ModelCard) -> int | None:
    """How far (input pixels) an output pixel can see, when that is small enough to pad by
    (the spec's formula; None for RRDBNet, see RRDB_CONTEXT)."""
    return spec_for(card).receptive_radius(card.arch_kwargs)


def default_context(card: ModelCard) -> int:
    """Context padding for tiles: the full receptive field where known, so tiles are exact."""
    radius = receptive_radius(card)
    return RRDB_CONTEXT if radius is None else radius


def input_multiple(card: ModelCard) -> int:
    """Input sizes (and tile offsets) must be multiples of this: the pixel-unshuffle grid."""
    return spec_for(card).input_multiple(card.scale)


def _kwargs_text(card: ModelCard) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in card.arch_kwargs.items())
