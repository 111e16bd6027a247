"""Notebook 09: the prior at initialisation. :class:`RandomConvNet` and :func:`init_spectrum`
(power spectrum of untrained outputs averaged over initialisations), :func:`spectral_slope` and
the slope tables.

References
----------
Z. Cheng, M. Gadelha, S. Maji and D. Sheldon, "A Bayesian Perspective on the Deep Image
Prior", CVPR 2019.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ...measure import _radial_weights

__all__ = [
    "RandomConvNet",
    "init_examples",
    "init_spectra",
    "init_spectrum",
    "nearly_white",
    "random_outputs",
    "select",
    "slope_table",
    "slopes",
    "spectral_slope",
    "steepens_with_depth",
    "steeper",
]


class RandomConvNet(nn.Module):
    """A stack of ``depth`` random convolutions with ReLU: DIP's prior at initialisation.

    Each layer is a ``kernel_size`` convolution (random normal weights of std
    ``sqrt(2 / fan_in)`` and normal biases of std ``bias_std``) followed by a ReLU; a last
    1×1 convolution maps to one channel, with no output nonlinearity. These are the
    conditions of the Gaussian-process limit (Cheng et al. 2019): random normal filters, many
    channels. Circular padding (the default) keeps the process stationary; with zero padding
    the borders add low-frequency structure that grows with the receptive field.

    Parameters
    ----------
    dims : {1, 2}
        1-D signals or 2-D images.
    depth : int
    channels : int
    kernel_size : int
    bias_std : float
    padding_mode : {"circular", "zeros", "reflect"}
    seed : int

    Examples
    --------
    >>> RandomConvNet(1, depth=3, channels=4)(torch.randn(1, 4, 32)).shape
    torch.Size([1, 1, 32])
    """

    def __init__(self, dims: int = 2, depth: int = 4, channels: int = 32, kernel_size: int = 3,
                 bias_std: float = 0.1, padding_mode: str = "circular", seed: int = 0) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        generator = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layer = conv(channels, channels, kernel_size, padding=kernel_size // 2,
                         padding_mode=padding_mode)
            layers += [layer, nn.ReLU()]
        layers.append(conv(channels, 1, 1))
        self.body = nn.Sequential(*layers)
        self.dims, self.depth, self.channels = dims, depth, channels
        with torch.no_grad():
            for layer in self.body:
                if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                    fan_in = layer.weight[0].numel()
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                                       * math.sqrt(2.0 / fan_in))
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator)
                                     * bias_std)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)


def _power_1d(signal: Tensor) -> Tensor:
    """Power spectrum of ``(B, 1, N)`` signals, frequencies 0 … N/2."""
    return torch.fft.rfft(signal[:, 0].double()).abs().square()


def _power_2d(image: Tensor) -> Tensor:
    """Radially averaged power spectrum of ``(B, 1, H, W)`` images (no range check)."""
    batch, _, height, width = image.shape
    power = torch.fft.fft2(image.double()).abs().square()
    weights = _radial_weights(height, width, image.device, torch.float64)
    return power.reshape(batch, -1) @ weights


def init_spectrum(depth: int, input_std: float = 1.0, dims: int = 2, size: int = 64,
                  channels: int = 32, samples: int = 32, bias_std: float = 0.1,
                  seed: int = 0, padding_mode: str = "circular") -> pd.Series:
    """Power spectrum of the untrained output, averaged over ``samples`` initialisations.

    Each sample draws a new :class:`RandomConvNet` (``padding_mode``: ``"circular"`` for a
    stationary process, ``"zeros"`` as DIP pads) and a new white Gaussian code of std
    ``input_std`` (``channels`` channels). The spectrum of each output (1-D: ``|rfft|²``;
    2-D: radially averaged ``|fft2|²``) has its DC term dropped and is normalised to sum 1
    before averaging, so only its shape counts.

    Returns
    -------
    pandas.Series
        Mean normalised power by frequency (cycles per signal), from frequency 1.
    """
    spectra = []
    with torch.no_grad():
        for k in range(samples):
            net = RandomConvNet(dims, depth, channels, bias_std=bias_std,
                                padding_mode=padding_mode, seed=seed * 100_003 + k)
            generator = torch.Generator().manual_seed(seed * 100_003 + k + 50_000)
            shape = (1, channels) + (size,) * dims
            z = torch.randn(shape, generator=generator) * input_std
            out = net(z)
            power = (_power_1d(out) if dims == 1 else _power_2d(out))[0, 1:]
            spectra.append(power / power.sum())
    mean = torch.stack(spectra).mean(0).numpy()
    return pd.Series(mean, index=pd.Index(np.arange(1, len(mean) + 1), name="frequency"),
                     name=f"depth {depth}, input std {input_std}")


def spectral_slope(spectrum: pd.Series, low: int = 2, high: int | None = None) -> float:
    """Least-squares slope of ``log power`` against ``log frequency`` over ``[low, high]``.

    More negative = steeper = smoother outputs. Default range: 2 … half the highest frequency.

    Examples
    --------
    >>> f = pd.Series([1.0 / k**2 for k in range(1, 33)], index=range(1, 33))
    >>> round(spectral_slope(f), 3)
    -2.0
    """
    high = high or int(spectrum.index.max()) // 2
    part = spectrum[(spectrum.index >= low) & (spectrum.index <= high)]
    slope = np.polyfit(np.log(part.index.to_numpy(dtype=float)),
                       np.log(part.to_numpy(dtype=float)), 1)[0]
    return float(slope)


def init_spectra(depths: Sequence[int], input_stds: Sequence[float], dims: int = 2,
                 size: int = 64, channels: int = 32, samples: int = 32, bias_std: float = 0.1,
                 seed: int = 0, padding_mode: str = "circular") -> pd.DataFrame:
    """:func:`init_spectrum` for every (depth, input std); columns are a (depth, std) index."""
    columns = {(d, s): init_spectrum(d, s, dims, size, channels, samples, bias_std, seed,
                                     padding_mode)
               for d in depths for s in input_stds}
    frame = pd.DataFrame(columns)
    frame.columns.names = ["depth", "input_std"]
    return frame


def slopes(spectra: pd.DataFrame) -> pd.Series:
    """:func:`spectral_slope` of every column of :func:`init_spectra`."""
    return spectra.apply(spectral_slope)


def slope_table(spectra: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Slopes of several :func:`init_spectra` frames: rows (depth, input std), one column each."""
    table = pd.DataFrame({label: slopes(frame) for label, frame in spectra.items()})
    return table.round(3)


def select(spectra: pd.DataFrame, depth: int | None = None,
           input_std: float | None = None) -> pd.DataFrame:
    """The columns of :func:`init_spectra` with this depth and/or input std."""
    keep = [c for c in spectra.columns
            if (depth is None or c[0] == depth) and (input_std is None or c[1] == input_std)]
    return spectra[keep]


def steeper(table: pd.DataFrame, column: str, first: tuple, second: tuple,
            other: str | None = None) -> bool:
    """Whether the slope at ``first`` (depth, std) in ``column`` is more negative than that at
    ``second`` in ``other`` (default: the same column)."""
    return bool(table.loc[first, column] < table.loc[second, other or column])


def nearly_white(table: pd.DataFrame, columns: Sequence[str], bound: float = 0.3) -> bool:
    """Whether every slope in ``columns`` lies within ``±bound`` (a nearly flat spectrum)."""
    values = table[list(columns)].to_numpy(dtype=float)
    return bool(np.all(np.abs(values[np.isfinite(values)]) < bound))


def steepens_with_depth(table: pd.DataFrame, input_std: float = 1.0) -> bool:
    """Whether, at ``input_std``, every column's slope falls strictly as the depth grows."""
    part = table.xs(input_std, level=1).sort_index()
    return bool((np.diff(part.to_numpy(), axis=0) < 0).all())


def init_examples(depths: Sequence[int], input_std: float = 1.0, size: int = 64,
                  channels: int = 32, bias_std: float = 0.1, seed: int = 0
                  ) -> dict[str, Tensor]:
    """One untrained 2-D output per depth, rescaled to [0, 1], titled for display."""
    return {f"depth {d}, σ_in {input_std:g}": random_outputs(d, input_std, 2, size, channels,
                                                             bias_std, seed) for d in depths}


def random_outputs(depth: int, input_std: float = 1.0, dims: int = 2, size: int = 64,
                   channels: int = 32, bias_std: float = 0.1, seed: int = 0) -> Tensor:
    """One untrained output, rescaled to [0, 1] for display (1-D: shape (N,))."""
    with torch.no_grad():
        net = RandomConvNet(dims, depth, channels, bias_std=bias_std, seed=seed * 100_003)
        generator = torch.Generator().manual_seed(seed * 100_003 + 50_000)
        z = torch.randn((1, channels) + (size,) * dims, generator=generator) * input_std
        out = net(z)
    out = (out - out.min()) / (out.max() - out.min()).clamp_min(1e-12)
    return out[0, 0] if dims == 1 else out
