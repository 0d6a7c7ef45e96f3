"""Tiled inference that leaves no seam, for any integer model scale.

Why tiles: memory (a 100 MP master does not fit through a network at once) and, on CPU, speed
(256 px tiles run faster than one huge convolution). Why seams appear: a tile's border pixels are
computed from the zero padding of every conv instead of from their real neighbours. The cure here:

1. Each tile is cut with `context` extra pixels on every side that has a neighbour (none past the
   image's own borders, where the network pads as it does on the whole image); the network runs
   on the larger window and the context is cropped from its output. With a context at least the
   receptive-field radius (models.loading.default_context), a tile's kept output is exactly what
   the network computes for those pixels on the whole image: tiled == untiled up to float
   rounding, so the tile size changes no pixel beyond that rounding.
2. Tiles are balanced (equal sizes), so no compute goes on a last tile that mostly repeats its
   neighbour.
3. Neighbouring tiles share `overlap` pixels; their outputs there are blended with linear-ramp
   (feathered) weights and normalised by the weight sum. With a full context this is a no-op up to
   rounding; with a shorter context (RRDBNet) it spreads any residual difference over the ramp
   instead of leaving a step.

Pixel-unshuffling networks (FFDNet, RRDBNet x1/x2) are only shift-equivariant by their unshuffle
factor: `multiple` keeps every tile offset and the context on that grid, and windows whose size is
off the grid are replicate-padded at the bottom/right (outside the kept region) and cropped back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

Network = Callable[[torch.Tensor], torch.Tensor]


def tile_spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """[start, end) spans covering 0..length, at most about `tile` long, neighbours sharing at least
    `overlap`, starts on the `multiple` grid. Spans are balanced (equal sizes): a 298 px edge with
    256 px tiles gives two 157 px spans, not a 256 px tile plus a 256 px tile that is 86 % overlap."""
    if tile <= 0 or length <= tile:
        return [(0, length)]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    # Balance in units of `multiple` so every start stays on the grid; the last span ends at length.
    m = multiple
    units, tile_u, overlap_u = -(-length // m), max(1, tile // m), -(-overlap // m)
    if units <= tile_u:
        return [(0, length)]
    if overlap_u >= tile_u:
        raise ValueError(f"overlap {overlap} leaves no stride with tile {tile} on a {m} px grid")
    count = -(-(units - overlap_u) // (tile_u - overlap_u))
    size = -(-(units + (count - 1) * overlap_u) // count)  # <= tile_u, as count was chosen
    starts = [i * (units - size) // (count - 1) for i in range(count)]
    return [(a * m, min(length, (a + size) * m)) for a in starts]


def _ramp(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Weights for n output pixels: rising over `before` pixels, falling over `after`, 1 between.
    Strictly positive, so every pixel's weight sum is positive."""
    i = torch.arange(n, dtype=torch.float32, device=device) + 0.5
    w = torch.ones(n, dtype=torch.float32, device=device)
    if before > 0:
        w = torch.minimum(w, i / before)
    if after > 0:
        w = torch.minimum(w, (n - i) / after)
    return w


def _run_window(net: Network, window: torch.Tensor, scale: int, multiple: int) -> torch.Tensor:
    h, w = window.shape[-2:]
    extra_h, extra_w = -h % multiple, -w % multiple
    if extra_h or extra_w:
        window = F.pad(window, (0, extra_w, 0, extra_h), mode="replicate")
    out = net(window)
    return out[..., : h * scale, : w * scale]


def tiled_forward(
    net: Network,
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    context: int,
    multiple: int = 1,
) -> torch.Tensor:
    """Run `net` over x (N, C, H, W) in tiles; returns (N, C_out, H*scale, W*scale) in float32.

    tile <= 0, or an image no larger than one tile, runs a single window (same padding).
    """
    if x.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    n, _, h, w = x.shape
    ctx = -(-max(context, 0) // multiple) * multiple  # keep the unshuffle grid phase
    ys, xs = tile_spans(h, tile, overlap, multiple), tile_spans(w, tile, overlap, multiple)
    s = scale

    out: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    for iy, (y0, y1) in enumerate(ys):
        before_y = ys[iy - 1][1] - y0 if iy > 0 else 0
        after_y = y1 - ys[iy + 1][0] if iy + 1 < len(ys) else 0
        wy = _ramp((y1 - y0) * s, before_y * s, after_y * s, x.device)
        for ix, (x0, x1) in enumerate(xs):
            before_x = xs[ix - 1][1] - x0 if ix > 0 else 0
            after_x = x1 - xs[ix + 1][0] if ix + 1 < len(xs) else 0
            wx = _ramp((x1 - x0) * s, before_x * s, after_x * s, x.device)
            # Context only where the tile has real neighbours; at the image's own borders the
            # network pads exactly as it does when run on the whole image.
            wy0, wy1 = max(0, y0 - ctx), min(h, y1 + ctx)
            wx0, wx1 = max(0, x0 - ctx), min(w, x1 + ctx)
            result = _run_window(net, x[..., wy0:wy1, wx0:wx1], s, multiple)
            top, left = (y0 - wy0) * s, (x0 - wx0) * s
            result = result[..., top : top + (y1 - y0) * s, left : left + (x1 - x0) * s].float()
            if len(ys) == 1 and len(xs) == 1:
                return result  # one window: nothing to blend
            if out is None or weight is None:
                out = torch.zeros((n, result.shape[1], h * s, w * s), dtype=torch.float32, device=x.device)
                weight = torch.zeros((1, 1, h * s, w * s), dtype=torch.float32, device=x.device)
            w2 = wy[:, None] * wx[None, :]
            out[..., y0 * s : y1 * s, x0 * s : x1 * s] += result * w2
            weight[..., y0 * s : y1 * s, x0 * s : x1 * s] += w2
    assert out is not None and weight is not None
    return out.div_(weight)
