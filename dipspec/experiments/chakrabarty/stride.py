"""Notebook 10: upsampling stride. :class:`StrideDecoder` (same depth, any total stride),
:func:`stride_fits`, and how smooth the outputs are: :func:`spectrum_error`,
:func:`high_frequency_energy` and :func:`smoothness_table`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ...fitting import FitResult, fit
from ...measure import to_grey
from ...nn import init_weights
from ...tasks import Task
from .initialisation import _power_2d

__all__ = [
    "StrideDecoder",
    "high_frequency_energy",
    "larger_high_error",
    "smoother",
    "smoothness_table",
    "spectrum_error",
    "stride_fits",
]


class StrideDecoder(nn.Module):
    """A decoder with ``depth`` conv blocks and a total upsampling stride ``stride``.

    The code has ``in_channels`` channels at ``(H / stride, W / stride)``; ``log2(stride)``
    of the blocks are preceded by a ×2 upsampling (the last ones, so that every variant ends
    with full-resolution blocks in the same place). A block is zero-padded 3×3 conv → batch
    norm → LeakyReLU(0.2); a 1×1 conv and a sigmoid make the image.

    Examples
    --------
    >>> net = StrideDecoder(stride=4, depth=3, channels=8, out_channels=1)
    >>> net.input_shape(16, 16)
    (8, 4, 4)
    >>> net(torch.rand(1, 8, 4, 4)).shape
    torch.Size([1, 1, 16, 16])
    """

    def __init__(self, stride: int = 32, depth: int = 6, channels: int = 32,
                 out_channels: int = 1, in_channels: int | None = None,
                 upsample: str = "bilinear", seed: int = 0) -> None:
        super().__init__()
        stages = int(round(math.log2(stride)))
        if stride < 1 or 2**stages != stride:
            raise ValueError(f"stride must be a power of 2, got {stride}")
        if stages > depth:
            raise ValueError(f"stride {stride} needs at least {stages} blocks, got depth={depth}")
        self.stride, self.depth, self.in_channels = stride, depth, in_channels or channels
        self.lipschitz_lambda = None
        layers: list[nn.Module] = []
        for block in range(depth):
            if block >= depth - stages:
                layers.append(nn.Upsample(scale_factor=2, mode=upsample))
            layers += [nn.Conv2d(self.in_channels if block == 0 else channels, channels, 3,
                                 padding=1), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(channels, out_channels, 1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
        init_weights(self, seed)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)

    def required_multiple(self) -> int:
        return self.stride

    def min_size(self) -> int:
        return self.stride

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.in_channels, height // self.stride, width // self.stride


def stride_fits(task: Task, strides: Sequence[int] = (4, 32), depth: int = 6,
                channels: int = 32, iterations: int = 1000, every: int = 50, seed: int = 0,
                device: str | torch.device = "cpu") -> dict[int, FitResult]:
    """Fit ``task`` with a :class:`StrideDecoder` of each stride (same depth, same seed)."""
    fits = {}
    for stride in strides:
        model = StrideDecoder(stride, depth, channels, out_channels=task.channels, seed=seed)
        fits[stride] = fit(task, model=model, iterations=iterations, seed=seed, device=device,
                           input_kind="noise", backtracking=False, metrics_every=every,
                           log_every=every, keep_outputs=range(0, iterations, every),
                           progress=False)
    return fits


def _log_profile(image: Tensor) -> Tensor:
    return torch.log10(_power_2d(to_grey(image)).clamp_min(1e-12))


def spectrum_error(result: FitResult, target: Tensor) -> pd.DataFrame:
    """``|log10 P_out(r) − log10 P_target(r)|`` of every kept output (rows: iteration).

    ``P`` is the radially averaged power spectrum (cycles per image, radius 0 … min(H, W)/2).
    """
    reference = _log_profile(target)[0]
    rows = {it: (_log_profile(out)[0] - reference).abs().numpy()
            for it, out in sorted(result.snapshots.items())}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name, frame.columns.name = "iteration", "frequency"
    return frame


def high_frequency_energy(image: Tensor, cutoff: float = 0.5) -> float:
    """Share of the (non-DC) power of the grey image above ``cutoff`` × the Nyquist radius.

    Lower = smoother.

    Examples
    --------
    >>> from dipspec.experiments.chakrabarty import gaussian_blur
    >>> flat = torch.full((1, 1, 16, 16), 0.5)
    >>> noisy = flat + 0.1 * torch.randn(1, 1, 16, 16)
    >>> high_frequency_energy(noisy.clamp(0, 1)) > high_frequency_energy(
    ...     gaussian_blur(noisy, 2.0).clamp(0, 1))
    True
    """
    profile = _power_2d(to_grey(image))[0, 1:]
    radius = torch.arange(1, len(profile) + 1, dtype=profile.dtype)
    # weight each radius by its ring's circumference: the profile is a mean over the ring
    power = profile * radius
    return float(power[radius > cutoff * len(profile)].sum() / power.sum())


def smoothness_table(fits: Mapping[int, FitResult], target: Tensor, iterations: Sequence[int],
                     cutoff: float = 0.5) -> pd.DataFrame:
    """:func:`high_frequency_energy` of each stride's output at each iteration (and target).

    Rows: iteration (kept outputs nearest to those asked), plus ``"target"``; columns: stride.
    """
    table = {}
    for stride, result in fits.items():
        kept = np.array(sorted(result.snapshots))
        column = {}
        for it in iterations:
            nearest = int(kept[np.abs(kept - it).argmin()])
            column[it] = high_frequency_energy(result.snapshots[nearest], cutoff)
        column["target"] = high_frequency_energy(target, cutoff)
        table[stride] = column
    frame = pd.DataFrame(table)
    frame.index.name, frame.columns.name = "iteration", "stride"
    return frame


def smoother(table: pd.DataFrame, first: int, second: int, iteration: int | None = None) -> bool:
    """Whether stride ``first`` has less high-frequency power than ``second`` (at ``iteration``,
    else at every compared iteration)."""
    rows = [iteration] if iteration is not None else [i for i in table.index if i != "target"]
    return bool((table.loc[rows, first] < table.loc[rows, second]).all())


def larger_high_error(errors: Mapping[int, pd.DataFrame], first: int, second: int,
                      iteration: int, cutoff: float = 0.5) -> bool:
    """Whether stride ``first`` has the larger mean spectrum error above ``cutoff`` × Nyquist."""

    def high(error: pd.DataFrame) -> float:
        row = error.iloc[np.abs(error.index.to_numpy() - iteration).argmin()]
        return float(row[row.index > cutoff * row.index.max()].mean())

    return bool(high(errors[first]) > high(errors[second]))
