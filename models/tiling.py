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

4. `reduce` shrinks each tile's output by an integer factor (block mean) before it is stored: an
   x4 model asked for x2 never holds the x4 image (a 24 MP scan's x4 output is 4.6 GB in float32).
   The block mean is what area resampling does at an integer factor, and the blocks never straddle
   two tiles (tile offsets are whole input pixels, `reduce` divides the scale).

Pixel-unshuffling networks (FFDNet, RRDBNet x1/x2) are only shift-equivariant by their unshuffle
factor: `multiple` keeps every tile offset and the context on that grid, and windows whose size is
off the grid are replicate-padded at the bottom/right (outside the kept region) and cropped back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Window:
    """One tile: the kept span [y0, y1) x [x0, x1) and the larger span the network sees."""

    y0: int
    y1: int
    x0: int
    x1: int
    wy0: int
    wy1: int
    wx0: int
    wx1: int
    before_y: int  # input pixels shared with the neighbour above (blend ramp), 0 at the border
    after_y: int
    before_x: int
    after_x: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.wy1 - self.wy0, self.wx1 - self.wx0


def plan_windows(h: int, w: int, *, tile: int, overlap: int, context: int, multiple: int = 1) -> list[Window]:
    """The tiles of an h x w input, row by row. Context only where a tile has real neighbours: at
    the image's own borders the network pads exactly as it does when run on the whole image."""
    ctx = -(-max(context, 0) // multiple) * multiple  # keep the unshuffle grid phase
    ys, xs = tile_spans(h, tile, overlap, multiple), tile_spans(w, tile, overlap, multiple)
    windows = []
    for iy, (y0, y1) in enumerate(ys):
        for ix, (x0, x1) in enumerate(xs):
            windows.append(Window(
                y0, y1, x0, x1, max(0, y0 - ctx), min(h, y1 + ctx), max(0, x0 - ctx), min(w, x1 + ctx),
                ys[iy - 1][1] - y0 if iy > 0 else 0, y1 - ys[iy + 1][0] if iy + 1 < len(ys) else 0,
                xs[ix - 1][1] - x0 if ix > 0 else 0, x1 - xs[ix + 1][0] if ix + 1 < len(xs) else 0,
            ))
    return windows


def batches(windows: list[Window], size: int) -> list[list[Window]]:
    """Windows of one shape together, at most `size` a batch, in first-seen order. Balanced spans
    make most windows the same shape (the interior ones; border rows and columns differ by their
    missing context), so a GPU gets full batches without padding that would change the borders."""
    groups: dict[tuple[int, int], list[Window]] = {}
    for win in windows:
        groups.setdefault(win.shape, []).append(win)
    size = max(1, size)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), size)]


def tiled_forward(
    net: Network,
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    context: int,
    multiple: int = 1,
    batch: int = 1,
    reduce: int = 1,
) -> torch.Tensor:
    """Run `net` over x (N, C, H, W) in tiles; returns (N, C_out, H*scale/reduce, W*scale/reduce)
    in float32, channels_last (so its HWC view needs no copy).

    tile <= 0, or an image no larger than one tile, runs a single window (same padding). `batch`
    windows of the same shape go through the network at once (their N stacked). `reduce` (a
    divisor of `scale`) block-averages each tile's output, clipped to [0, 1], on the way out.
    """
    _check_arguments(x, scale, reduce)
    n, _, h, w = x.shape
    windows = plan_windows(h, w, tile=tile, overlap=overlap, context=context, multiple=multiple)
    if len(windows) == 1:  # one window: nothing to blend
        return _shrink(_run_window(net, x, scale, multiple), reduce).contiguous(memory_format=torch.channels_last)

    o = scale // reduce  # output pixels per input pixel, after the block mean
    out: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    for group in batches(windows, batch):
        stacked = torch.cat([x[..., g.wy0 : g.wy1, g.wx0 : g.wx1] for g in group])
        results = _run_window(net, stacked, scale, multiple)
        for i, g in enumerate(group):
            kept = _shrink(_kept_output(results[i * n : (i + 1) * n], g, scale), reduce)
            if out is None:
                out, weight = _new_output(n, kept.shape[1], h * o, w * o, x.device, blend=overlap > 0)
            _add_tile(out, weight, kept, g, o)
    assert out is not None
    return out if weight is None else out.div_(weight)


def _check_arguments(x: torch.Tensor, scale: int, reduce: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if reduce < 1 or scale % reduce:
        raise ValueError(f"reduce must be a positive divisor of the scale {scale}, got {reduce}")


def _shrink(t: torch.Tensor, reduce: int) -> torch.Tensor:
    """A network output as float32, shrunk by `reduce` with a block mean."""
    t = t.float()  # clipped to the image range first, as the full output would be before resizing
    return t if reduce == 1 else F.avg_pool2d(t.clamp(0, 1), reduce)


def _kept_output(result: torch.Tensor, g: Window, scale: int) -> torch.Tensor:
    """The network's output for the window `g` without its context: the pixels the tile keeps."""
    top, left = (g.y0 - g.wy0) * scale, (g.x0 - g.wx0) * scale
    return result[:, :, top : top + (g.y1 - g.y0) * scale, left : left + (g.x1 - g.x0) * scale]


def _new_output(n: int, channels: int, h: int, w: int, device: torch.device, *,
                blend: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The output image, and the sum of blend weights per pixel (None when tiles do not overlap)."""
    # Made channels_last (not converted: that would be a second full copy); without
    # blending every pixel is written once, so it need not be zeroed.
    out = torch.empty((n, channels, h, w), dtype=torch.float32, device=device, memory_format=torch.channels_last)
    if blend:
        out.zero_()
    weight = torch.zeros((1, 1, h, w), dtype=torch.float32, device=device) if blend else None
    return out, weight


def _add_tile(out: torch.Tensor, weight: torch.Tensor | None, kept: torch.Tensor, g: Window, o: int) -> None:
    """Write a tile's kept output (`o` output pixels per input pixel) into `out`, feathered where
    it overlaps its neighbours."""
    region = (..., slice(g.y0 * o, g.y1 * o), slice(g.x0 * o, g.x1 * o))
    if weight is None:  # no overlap: every output pixel comes from exactly one tile
        out[region] = kept
        return
    wy = _ramp((g.y1 - g.y0) * o, g.before_y * o, g.after_y * o, out.device)
    wx = _ramp((g.x1 - g.x0) * o, g.before_x * o, g.after_x * o, out.device)
    w2 = wy[:, None] * wx[None, :]
    out[region] += kept * w2
    weight[region] += w2
