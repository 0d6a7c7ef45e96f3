"""FFDNet (Zhang, Zuo, Zhang 2018) in KAIR's layout, so KAIR-format state dicts load strictly.

The network works at half resolution: the image is pixel-unshuffled x2 (4 sub-images per channel),
a constant noise-level map sigma/255 is appended as one more channel, a plain conv+ReLU stack
predicts the clean sub-images, which are pixel-shuffled back. Because the noise level is an input,
one set of weights denoises at any strength. Keys: `model.{0,2,...,2*(nb-1)}.weight/bias`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FFDNet(nn.Module):
    def __init__(self, in_nc: int = 3, out_nc: int = 3, nc: int = 96, nb: int = 12) -> None:
        super().__init__()
        sf = 2
        layers: list[nn.Module] = [nn.Conv2d(in_nc * sf * sf + 1, nc, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, 1, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(nc, out_nc * sf * sf, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        self.nb = nb

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """x: (N, C, H, W) RGB in [0, 1]; sigma: noise level as a fraction of 1 (sigma255 / 255),
        a float or an (N, 1, 1, 1) tensor."""
        h, w = x.shape[-2:]
        # Odd sizes: replicate one row/column (as KAIR does), cropped off again below.
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
        x = F.pixel_unshuffle(x, 2)  # same channel order as KAIR's own PixelUnShuffle
        if not torch.is_tensor(sigma):
            sigma = torch.full((x.shape[0], 1, 1, 1), float(sigma), dtype=x.dtype, device=x.device)
        noise_map = sigma.to(dtype=x.dtype, device=x.device).expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
        x = self.model(torch.cat((x, noise_map), dim=1))
        return F.pixel_shuffle(x, 2)[..., :h, :w]
