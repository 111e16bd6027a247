"""Networks: the paper's decoder, the DIP encoder–decoder and the baselines (SPEC §2).

Every model maps a fixed code ``z`` to an image ``(B, C, H, W)`` in [0, 1] (sigmoid output).
Construction is reproducible: pass ``seed`` (or a ``torch.Generator``) and the same weights
come out on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._checks import check_sigma
from .layers import (
    GaussianUpsample,
    LipschitzConv2d,
    LipschitzConvTranspose2d,
    MeanOnlyBatchNorm,
    precompute_sigma_max,
)

__all__ = [
    "INPUT_KINDS",
    "UPSAMPLE_MODES",
    "ConvNet",
    "Decoder",
    "LinearDIP",
    "ReLUNet",
    "SkipNet",
    "controlled_layers",
    "init_weights",
    "make_input",
]

UPSAMPLE_MODES = ("nearest", "bilinear", "deconv", "gaussian")
INPUT_KINDS = ("fourier", "noise", "meshgrid")


def _generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def init_weights(module: nn.Module, seed: int | torch.Generator | None = None,
                 a: float = 0.0) -> nn.Module:
    """Kaiming-uniform (fan-in, slope ``a``) weights and PyTorch's uniform biases, seeded.

    Walks ``module`` in registration order, so the same seed gives the same network on any
    device. Returns ``module``.
    """
    gen = _generator(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                weight = torch.empty(layer.weight.shape)
                nn.init.kaiming_uniform_(weight, a=a, mode="fan_in", nonlinearity="leaky_relu",
                                         generator=gen)
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    bias = torch.empty(layer.bias.shape).uniform_(-bound, bound, generator=gen)
                    layer.bias.copy_(bias)
    return module


def controlled_layers(model: nn.Module) -> list[nn.Module]:
    """The Lipschitz-controlled layers of ``model`` that have a λ set."""
    return [m for m in model.modules()
            if isinstance(m, (LipschitzConv2d, LipschitzConvTranspose2d))
            and m.lipschitz_lambda is not None]


def make_input(kind: str, channels: int, spatial_size: int | tuple[int, int], seed: int = 0,
               var: float | None = None) -> Tensor:
    """The fixed network code ``z`` of shape ``(1, channels, h, w)`` (SPEC §2 "Inputs").

    Parameters
    ----------
    kind : {"fourier", "noise", "meshgrid"}
        ``fourier`` (the paper's): ``u ~ U(0, 1)`` with ``channels // 2`` channels, scaled by
        ``var`` (default 1.0), returned as ``[sin 2πu, cos 2πu]``. ``noise``: ``U(0, 1) × var``
        (default 0.1, Ulyanov et al.). ``meshgrid``: 2 channels of x and y in [0, 1].
    channels : int
    spatial_size : int or (h, w)
    seed : int

    Examples
    --------
    >>> make_input("fourier", 32, (2, 3)).shape
    torch.Size([1, 32, 2, 3])
    >>> bool(torch.equal(make_input("noise", 4, 5, seed=1), make_input("noise", 4, 5, seed=1)))
    True
    """
    h, w = (spatial_size, spatial_size) if isinstance(spatial_size, int) else spatial_size
    gen = _generator(seed)
    if kind == "fourier":
        if channels % 2:
            raise ValueError(f"fourier input needs an even channel count, got {channels}")
        u = torch.rand(1, channels // 2, h, w, generator=gen) * (1.0 if var is None else var)
        return torch.cat([torch.sin(2 * math.pi * u), torch.cos(2 * math.pi * u)], dim=1)
    if kind == "noise":
        return torch.rand(1, channels, h, w, generator=gen) * (0.1 if var is None else var)
    if kind == "meshgrid":
        if channels != 2:
            raise ValueError(f"meshgrid input has 2 channels, got channels={channels}")
        ys = torch.linspace(0, 1, h) if h > 1 else torch.zeros(1)
        xs = torch.linspace(0, 1, w) if w > 1 else torch.zeros(1)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y])[None]
    raise ValueError(f"unknown input kind {kind!r}; choose one of {INPUT_KINDS}")


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
        self.lipschitz_lambda = lipschitz_lambda
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
    >>> net = ConvNet(channels=8, blocks=3, seed=0)
    >>> net(make_input("fourier", 32, (6, 7))).shape
    torch.Size([1, 3, 6, 7])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 128,
                 blocks: int = 12, lipschitz_lambda: float | None = None,
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lipschitz_lambda = lipschitz_lambda
        layers = [_conv_block(in_channels if i == 0 else channels, channels, lipschitz_lambda)
                  for i in range(blocks)]
        self.body = nn.Sequential(*layers, nn.Conv2d(channels, out_channels, 1), nn.Sigmoid())
        self._finish(seed)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.in_channels, height, width


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


from .baselines import LinearDIP, ReLUNet  # noqa: E402  (re-export; SPEC §2 baselines)
