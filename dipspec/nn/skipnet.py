"""The DIP encoder–decoder ("skip" hourglass of Ulyanov et al.; SPEC §2 baselines)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .init import init_weights

__all__ = ["SkipNet"]


class _Concat(nn.Module):
    """Concatenate branch outputs along channels, centre-cropping to the smallest size."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        cropped = [o[:, :, (o.shape[2] - h) // 2:(o.shape[2] - h) // 2 + h,
                     (o.shape[3] - w) // 2:(o.shape[3] - w) // 2 + w] for o in outs]
        return torch.cat(cropped, dim=1)


def _skip_conv(in_ch: int, out_ch: int, kernel: int, stride: int, padding_mode: str) -> nn.Module:
    pad = (kernel - 1) // 2
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride)
    if pad == 0:
        return conv
    padder = nn.ReflectionPad2d(pad) if padding_mode == "reflection" else nn.ZeroPad2d(pad)
    return nn.Sequential(padder, conv)


class SkipNet(nn.Module):
    """The DIP encoder–decoder ("skip" hourglass of Ulyanov et al.; SPEC §2 baselines).

    Parameters
    ----------
    in_channels : int
        Channels of the full-resolution noise code (32).
    out_channels : int
    channels : int
        Width of every down and up path (128; Chakrabarty & Maji use 256).
    skip_channels : int
        Channels of each skip connection (4).
    scales : int
        Number of scales (5).
    upsample : {"nearest", "bilinear"}
    padding_mode : {"reflection", "zeros"}
    seed : int or torch.Generator, optional

    Examples
    --------
    >>> net = SkipNet(in_channels=4, channels=8, scales=2, seed=0)
    >>> net(torch.rand(1, 4, 16, 12)).shape
    torch.Size([1, 3, 16, 12])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 128,
                 skip_channels: int = 4, scales: int = 5, upsample: str = "bilinear",
                 padding_mode: str = "reflection",
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"SkipNet upsample must be 'nearest' or 'bilinear', got {upsample!r}")
        if padding_mode not in ("reflection", "zeros"):
            raise ValueError(f"padding_mode must be 'reflection' or 'zeros', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.scales = in_channels, out_channels, scales
        self.lipschitz_lambda = None

        def act() -> nn.Module:
            return nn.LeakyReLU(0.2)

        def level(depth_in: int, i: int) -> nn.Sequential:
            """Scale ``i``: skip branch ‖ (down → deeper → up), then the merge convs."""
            deeper = [_skip_conv(depth_in, channels, 3, 2, padding_mode), nn.BatchNorm2d(channels),
                      act(), _skip_conv(channels, channels, 3, 1, padding_mode),
                      nn.BatchNorm2d(channels), act()]
            if i < scales - 1:
                deeper.append(level(channels, i + 1))
            deeper.append(nn.Upsample(scale_factor=2, mode=upsample))
            skip = nn.Sequential(_skip_conv(depth_in, skip_channels, 1, 1, padding_mode),
                                 nn.BatchNorm2d(skip_channels), act())
            merged = skip_channels + channels
            return nn.Sequential(
                _Concat(skip, nn.Sequential(*deeper)), nn.BatchNorm2d(merged),
                _skip_conv(merged, channels, 3, 1, padding_mode), nn.BatchNorm2d(channels), act(),
                _skip_conv(channels, channels, 1, 1, padding_mode), nn.BatchNorm2d(channels),
                act(),
            )

        self.body = nn.Sequential(level(in_channels, 0), nn.Conv2d(channels, out_channels, 1),
                                  nn.Sigmoid())
        init_weights(self, seed)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)

    def required_multiple(self) -> int:
        return 2**self.scales

    def min_size(self) -> int:
        return 2 ** (self.scales + 1)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.in_channels, height, width
