"""Notebook 08: low-frequency noise. DIP fits white noise late, but low-passed noise as early as
the image: :func:`low_frequency_noise`, and :func:`fitted_fractions` (how much of the noise and
of the image's fine texture an output has reproduced) over a fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ...fitting import FitResult
from ...tasks import Denoise
from .common import _dip_fit

__all__ = [
    "crop",
    "first_reach",
    "fitted_fraction_curves",
    "fitted_fractions",
    "fitting_order",
    "gaussian_blur",
    "low_frequency_noise",
    "noise_fits",
    "white_noise",
]


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of ``(B, C, H, W)`` with std ``sigma`` pixels (circular, via the FFT).

    Examples
    --------
    >>> x = torch.rand(1, 1, 16, 16)
    >>> bool(torch.allclose(gaussian_blur(x, 2.0).mean(), x.mean(), atol=1e-6))
    True
    """
    height, width = image.shape[-2:]
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    transfer = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    blurred = torch.fft.ifft2(torch.fft.fft2(image.double()) * transfer).real
    return blurred.to(image.dtype)


def low_frequency_noise(shape: Sequence[int], std: float = 25 / 255, sigma: float = 4.0,
                        seed: int = 0) -> Tensor:
    """White Gaussian noise low-passed by a Gaussian of ``sigma`` pixels, rescaled to ``std``.

    Examples
    --------
    >>> n = low_frequency_noise((1, 1, 32, 32), std=0.1, sigma=3.0)
    >>> n.shape, round(float(n.std()), 3)
    (torch.Size([1, 1, 32, 32]), 0.1)
    """
    generator = torch.Generator().manual_seed(seed)
    white = torch.randn(tuple(shape), generator=generator, dtype=torch.float64)
    smooth = gaussian_blur(white, sigma)
    smooth = smooth - smooth.mean()
    return (smooth * (std / smooth.std())).float()


def white_noise(shape: Sequence[int], std: float = 25 / 255, seed: int = 0) -> Tensor:
    """White Gaussian noise of std ``std`` (the CPU generator seeded with ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator) * std


def fitted_fractions(output: Tensor, clean: Tensor, noise: Tensor,
                     texture_sigma: float = 1.5) -> tuple[float, float]:
    """How much of the noise and of the fine texture an output reproduces (each 0 … 1).

    ``noise``: the least-squares coefficient of ``noise`` in ``output − clean``.
    ``texture``: the coefficient of the clean image's fine texture ``t = clean − blur(clean)``
    in ``output − blur(clean)`` (``blur``: Gaussian of ``texture_sigma`` pixels). An output
    equal to ``clean + noise`` scores (1, 1); the blurred clean image scores (0, 0).

    Examples
    --------
    >>> x = torch.rand(1, 1, 32, 32); n = 0.1 * torch.randn(1, 1, 32, 32)
    >>> [round(v, 1) for v in fitted_fractions(x + n, x, n)]
    [1.0, 1.0]
    """
    smooth = gaussian_blur(clean, texture_sigma)
    texture = clean - smooth
    noise_part = float(((output - clean) * noise).sum() / noise.square().sum())
    texture_part = float(((output - smooth) * texture).sum() / texture.square().sum())
    return noise_part, texture_part


def fitted_fraction_curves(result: FitResult, clean: Tensor, noise: Tensor,
                           texture_sigma: float = 1.5) -> pd.DataFrame:
    """:func:`fitted_fractions` of every kept output of ``result`` (columns noise, texture)."""
    rows = {it: fitted_fractions(out, clean, noise, texture_sigma)
            for it, out in sorted(result.snapshots.items())}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["noise", "texture"])
    frame.index.name = "iteration"
    return frame


def first_reach(curve: pd.Series, value: float) -> float:
    """First index at which ``curve >= value`` (``inf`` if never)."""
    hit = curve[curve >= value]
    return float(hit.index[0]) if len(hit) else math.inf


def crop(image: Tensor, top: int, left: int, size: int) -> Tensor:
    """The ``size × size`` crop of ``image`` (B, C, H, W) whose top-left pixel is (top, left).

    Examples
    --------
    >>> crop(torch.rand(1, 1, 10, 12), 2, 3, 4).shape
    torch.Size([1, 1, 4, 4])
    """
    height, width = image.shape[-2:]
    if top < 0 or left < 0 or top + size > height or left + size > width:
        raise ValueError(f"crop of {size}x{size} at ({top}, {left}) leaves the "
                         f"{height}x{width} image; pick a smaller size or another corner")
    return image[..., top:top + size, left:left + size].contiguous()


def fitting_order(fits: Mapping[str, FitResult],
                  curves: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """When each fit reproduces half of its noise and half of the fine texture.

    Returns
    -------
    pandas.DataFrame
        One row per noise: ``noise_half`` and ``texture_half`` (first kept iteration where
        the fitted fraction reaches 0.5; ``inf`` if never), ``peak_iteration`` and
        ``peak_psnr`` (PSNR against the clean image), and ``noise_at_peak`` /
        ``texture_at_peak`` (fractions at the kept iteration nearest the peak).
    """
    rows = {}
    for label, result in fits.items():
        curve = curves[label]
        peak_iteration, peak_psnr = result.peak("psnr")
        nearest = curve.index[np.abs(curve.index.to_numpy() - peak_iteration).argmin()]
        rows[label] = dict(noise_half=first_reach(curve["noise"], 0.5),
                           texture_half=first_reach(curve["texture"], 0.5),
                           peak_iteration=peak_iteration, peak_psnr=round(peak_psnr, 2),
                           noise_at_peak=round(float(curve.loc[nearest, "noise"]), 3),
                           texture_at_peak=round(float(curve.loc[nearest, "texture"]), 3))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "noise"
    return frame


def noise_fits(clean: Tensor, noises: Mapping[str, Tensor], iterations: int = 1500,
               every: int = 25, channels: int = 32, scales: int = 4, seed: int = 0,
               metrics_every: int = 25, texture_sigma: float = 1.5,
               device: str | torch.device = "cpu"
               ) -> tuple[dict[str, FitResult], dict[str, pd.DataFrame]]:
    """Fit DIP to ``clean + noise`` for each labelled noise; fits and fitted-fraction curves."""
    fits, curves = {}, {}
    for label, noise in noises.items():
        observation = (clean + noise).clamp(0, 1)
        task = Denoise(clean=clean, observation=observation)
        fits[label] = _dip_fit(task, seed, iterations, channels, scales, keep_every=every,
                               device=device, metrics_every=metrics_every)
        curves[label] = fitted_fraction_curves(fits[label], clean, observation - clean,
                                               texture_sigma)
    return fits, curves
