"""Tiled inference: no seams. Tiled output equals untiled output within 0.5/255 everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from models.cards import get_card
from models.loading import default_context, input_multiple, receptive_radius
from models.tiling import tile_spans, tiled_forward

TOL = 0.5 / 255


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Random but smooth RGB in [0, 1]: coarse noise, bicubic-upsampled, plus a little fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, h // 8 + 2, w // 8 + 2), generator=g)
    img = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (img + 0.02 * torch.rand((1, 3, h, w), generator=g)).clamp(0, 1)


def srvgg(num_conv: int, upscale: int, seed: int = 0) -> torch.nn.Module:
    from models.torch_compat import ensure_basicsr_importable

    ensure_basicsr_importable()
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    torch.manual_seed(seed)
    return SRVGGNetCompact(3, 3, num_feat=16, num_conv=num_conv, upscale=upscale, act_type="prelu").eval()


@pytest.mark.parametrize(("length", "tile", "overlap", "multiple"),
                         [(300, 64, 8, 1), (200, 64, 8, 1), (101, 32, 6, 2), (157, 40, 8, 4), (64, 64, 8, 1),
                          (65, 64, 8, 2), (30, 64, 8, 1), (129, 64, 0, 1)])
def test_tile_spans_cover_overlap_and_align(length: int, tile: int, overlap: int, multiple: int) -> None:
    spans = tile_spans(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a0 < b0 and b0 <= a1 - overlap, "neighbours share at least `overlap` pixels"
        assert a1 <= b1
    assert all(start % multiple == 0 for start, _ in spans)
    if length <= tile:
        assert spans == [(0, length)]
    else:
        assert all(end - start <= tile + multiple - 1 for start, end in spans)


@pytest.mark.parametrize(("scale", "tile", "overlap"), [(1, 48, 8), (3, 50, 10), (4, 64, 0)])
def test_blending_is_normalised(scale: int, tile: int, overlap: int) -> None:
    """A pointwise 'network' must come through tiling unchanged: weights sum to one everywhere."""
    x = smooth_image(123, 187)

    def nearest(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=scale, mode="nearest")

    out = tiled_forward(nearest, x, scale=scale, tile=tile, overlap=overlap, context=5)
    assert out.shape == (1, 3, 123 * scale, 187 * scale)
    torch.testing.assert_close(out, nearest(x), atol=1e-6, rtol=0)


@torch.inference_mode()
def test_random_srvgg_tiled_equals_untiled() -> None:
    net = srvgg(num_conv=4, upscale=4)
    x = smooth_image(200, 300)
    context = 4 + 2  # receptive radius of SRVGGNetCompact(num_conv=4)
    untiled = tiled_forward(net, x, scale=4, tile=0, overlap=0, context=context)
    tiled = tiled_forward(net, x, scale=4, tile=64, overlap=8, context=context)
    assert tiled.shape == untiled.shape == (1, 3, 800, 1200)
    assert (tiled - untiled).abs().max().item() < TOL
    # Away from the image border (where we reflect rather than zero-pad), both equal the plain network.
    plain = net(x)
    b = context * 4
    assert (tiled - plain)[..., b:-b, b:-b].abs().max().item() < TOL


@pytest.mark.parametrize(("scale", "shape"), [(1, (101, 157)), (2, (97, 130))])
@torch.inference_mode()
def test_random_srvgg_other_scales(scale: int, shape: tuple[int, int]) -> None:
    net = srvgg(num_conv=3, upscale=scale, seed=1)
    x = smooth_image(*shape, seed=1)
    untiled = tiled_forward(net, x, scale=scale, tile=0, overlap=0, context=5)
    tiled = tiled_forward(net, x, scale=scale, tile=40, overlap=6, context=5)
    assert tiled.shape == (1, 3, shape[0] * scale, shape[1] * scale)
    assert (tiled - untiled).abs().max().item() < TOL


@torch.inference_mode()
def test_unshuffling_networks_keep_their_grid() -> None:
    """FFDNet (unshuffle 2, scale 1) and RRDBNet x2 (unshuffle 2): odd sizes, tile offsets on grid."""
    from models.ffdnet import FFDNet
    from models.torch_compat import ensure_basicsr_importable

    torch.manual_seed(0)
    ffd = FFDNet(3, 3, nc=16, nb=5).eval()
    x = smooth_image(75, 121, seed=2)
    run = lambda t: ffd(t, 25 / 255)
    untiled = tiled_forward(run, x, scale=1, tile=0, overlap=0, context=11, multiple=2)
    tiled = tiled_forward(run, x, scale=1, tile=32, overlap=6, context=11, multiple=2)
    assert (tiled - untiled).abs().max().item() < TOL

    ensure_basicsr_importable()
    from basicsr.archs.rrdbnet_arch import RRDBNet

    rrdb = RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4).eval()
    x = smooth_image(45, 61, seed=3)
    untiled = tiled_forward(rrdb, x, scale=2, tile=0, overlap=0, context=40, multiple=2)
    tiled = tiled_forward(rrdb, x, scale=2, tile=24, overlap=4, context=40, multiple=2)
    assert tiled.shape == (1, 3, 90, 122)
    assert (tiled - untiled).abs().max().item() < TOL


def test_default_context_is_the_receptive_field() -> None:
    assert receptive_radius(get_card("realesr-general-x4v3")) == default_context(get_card("realesr-general-x4v3")) == 34
    assert receptive_radius(get_card("realesr-animevideov3")) == 18
    assert receptive_radius(get_card("ffdnet_color")) == 25
    assert input_multiple(get_card("ffdnet_color")) == input_multiple(get_card("RealESRGAN_x2plus")) == 2
    assert input_multiple(get_card("RealESRGAN_x4plus")) == 1


@torch.inference_mode()
def test_real_general_x4v3_tiled_equals_untiled(shared_models: Path, shared_data: Path, read_rgb) -> None:
    from models.loading import build_network
    from models.weights import resolve

    weights = resolve("realesr-general-x4v3", shared_models)
    net = build_network(weights.card, weights.path, "cpu")
    rgb = read_rgb(shared_data / "sr_gt" / "McMaster" / "1.tif")[100:260, 150:350]  # 160 x 200
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
    context = default_context(weights.card)
    untiled = tiled_forward(net, x, scale=4, tile=0, overlap=0, context=context)
    tiled = tiled_forward(net, x, scale=4, tile=64, overlap=8, context=context)
    diff = (tiled - untiled).abs().max().item()
    print(f"general-x4v3 tiled vs untiled, context {context}: max |diff| = {diff * 255:.2e}/255")
    assert diff < TOL
