"""The paper's decoder and its upsampling-free variant (SPEC §2).

Both map a fixed code ``z`` to an image ``(B, C, H, W)`` in [0, 1] (sigmoid output) through
blocks of reflection padding, a λ-controlled 3×3 convolution, mean-only batch norm and
LeakyReLU. Construction is reproducible: pass ``seed`` (or a ``torch.Generator``) and the same
weights come out on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_lambda, check_sigma
from .gaussian import GaussianUpsample
from .init import init_weights
from .lipschitz import (
    LipschitzConv2d,
    LipschitzConvTranspose2d,
    controlled_layers,
    precompute_sigma_max,
)
from .norm import MeanOnlyBatchNorm

__all__ = ["UPSAMPLE_MODES", "ConvNet", "Decoder"]

UPSAMPLE_MODES = ("nearest", "bilinear", "deconv", "gaussian")


def _conv_block(in_ch: int, out_ch: int, lipschitz_lambda: float | None) -> nn.Sequential:
    """Reflection pad 1 → controlled 3×3 conv → mean-only BN → LeakyReLU(0.01) (SPEC §2)."""
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        LipschitzConv2d(in_ch, out_ch, 3, lipschitz_lambda=lipschitz_lambda),
        MeanOnlyBatchNorm(out_ch),
        nn.LeakyReLU(0.01),
    )


def _upsampler(mode: str, channels: int, sigma: float,
               lipschitz_lambda: float | None) -> nn.Module:
    if mode == "gaussian":
        return GaussianUpsample(channels, sigma)
    if mode == "deconv":
        return LipschitzConvTranspose2d(channels, channels, 4, stride=2, padding=1,
                                        lipschitz_lambda=lipschitz_lambda)
    return nn.Upsample(scale_factor=2, mode=mode)


def _check_mode(upsample: str) -> str:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"unknown upsample mode {upsample!r}; choose one of {UPSAMPLE_MODES}")
    return upsample


def _sigma_per_stage(gaussian_sigma: float | Sequence[float], stages: int) -> tuple[float, ...]:
    if isinstance(gaussian_sigma, (int, float)):
        return (check_sigma(gaussian_sigma),) * stages
    sigmas = tuple(check_sigma(s) for s in gaussian_sigma)
    if len(sigmas) != stages:
        raise ValueError(f"gaussian_sigma needs one value per stage ({stages}), got {sigmas}; "
                         "pass a single float to use it for every stage")
    return sigmas


class _ControlledNet(nn.Module):
    """Base for nets with Lipschitz layers: one batched σ_max solve per forward pass."""

    def forward(self, z: Tensor) -> Tensor:
        if self._controlled:
            precompute_sigma_max(self._controlled)
        return self.body(z)

    def _finish(self, seed) -> None:
        init_weights(self, seed)
        self._controlled = controlled_layers(self)

    def required_multiple(self) -> int:
        """H and W of the output must be multiples of this."""
        return 1

    def min_size(self) -> int:
        """Smallest H and W of the output (reflection padding needs a 2-pixel code)."""
        return 2

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(channels, h, w)`` of the code for an output of ``height × width``."""
        raise NotImplementedError


class Decoder(_ControlledNet):
    """The paper's decoder (SPEC §2), with λ-controlled convolutions and a choice of upsampling.

    Parameters
    ----------
    in_channels : int
        Channels of the code ``z`` (32: the Fourier code of 16 uniform channels).
    out_channels : int
        1 (grey) or 3 (colour).
    channels : int
        Width of every hidden layer (128 in the paper).
    stages : int
        Number of ×2 upsampling stages; the code is at ``(H / 2**stages, W / 2**stages)``.
    lipschitz_lambda : float or None
        λ of every 3×3 convolution (SPEC §3); ``None`` is plain (uncontrolled) DIP.
    upsample : {"nearest", "bilinear", "deconv", "gaussian"}
    gaussian_sigma : float or sequence of float
        σ per stage for ``upsample="gaussian"``, coarse to fine.
    seed : int or torch.Generator, optional
        Seed of the Kaiming-uniform initialisation.

    Examples
    --------
    >>> from dipspec.nn import make_input
    >>> net = Decoder(channels=8, stages=2, lipschitz_lambda=1.4, seed=0)
    >>> net(make_input("fourier", 32, (2, 3))).shape
    torch.Size([1, 3, 8, 12])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 128,
                 stages: int = 5, lipschitz_lambda: float | None = None,
                 upsample: str = "bilinear",
                 gaussian_sigma: float | Sequence[float] = (0.1, 0.1, 0.1, 0.5, 0.5),
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        self.upsample = _check_mode(upsample)
        self.stages, self.in_channels, self.out_channels = stages, in_channels, out_channels
        sigmas = _sigma_per_stage(gaussian_sigma, stages) if upsample == "gaussian" else None
        self.gaussian_sigma = sigmas
        self.lipschitz_lambda = lipschitz_lambda = check_lambda(lipschitz_lambda)
        layers: list[nn.Module] = [_conv_block(in_channels, channels, lipschitz_lambda),
                                   _conv_block(channels, channels, lipschitz_lambda)]
        for stage in range(stages):
            sigma = sigmas[stage] if sigmas else 0.0
            layers.append(_upsampler(upsample, channels, sigma, lipschitz_lambda))
            layers.append(_conv_block(channels, channels, lipschitz_lambda))
            if upsample != "deconv":
                layers.append(_conv_block(channels, channels, lipschitz_lambda))
        layers += [nn.Conv2d(channels, out_channels, 1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
        self._finish(seed)

    def required_multiple(self) -> int:
        return 2**self.stages

    def min_size(self) -> int:
        return 2 ** (self.stages + 1)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        m = self.required_multiple()
        if height % m or width % m:
            raise ValueError(f"Decoder with {self.stages} stages needs H and W that are a multiple "
                             f"of {m}, got {height}x{width}; dipspec.fit pads for you")
        return self.in_channels, height // m, width // m


class ConvNet(_ControlledNet):
    """The decoder without upsampling: the code is already at full resolution (SPEC §2).

    Examples
    --------
    >>> from dipspec.nn import make_input
    >>> net = ConvNet(channels=8, blocks=3, seed=0)
    >>> net(make_input("fourier", 32, (6, 7))).shape
    torch.Size([1, 3, 6, 7])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 128,
                 blocks: int = 12, lipschitz_lambda: float | None = None,
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lipschitz_lambda = lipschitz_lambda = check_lambda(lipschitz_lambda)
        layers = [_conv_block(in_channels if i == 0 else channels, channels, lipschitz_lambda)
                  for i in range(blocks)]
        self.body = nn.Sequential(*layers, nn.Conv2d(channels, out_channels, 1), nn.Sigmoid())
        self._finish(seed)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.in_channels, height, width
