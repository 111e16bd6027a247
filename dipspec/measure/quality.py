"""Full-reference image quality: PSNR and SSIM, batched and on the input's device.

Tensors in, tensors out (torch only, no host sync), so the training loop may log them cheaply.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import as_batched_image

__all__ = ["psnr", "ssim"]

#: SSIM window: Gaussian, sigma 1.5, truncated to 11 taps (Wang et al. 2004; skimage's
#: ``gaussian_weights=True`` gives the same window: radius int(3.5 * 1.5 + 0.5) = 5).
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _checked_pair(x: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
    x = as_batched_image(x, "x")
    ref = as_batched_image(ref, "ref")
    if x.shape != ref.shape:
        raise ValueError(
            f"x and ref must have the same shape, got {tuple(x.shape)} and {tuple(ref.shape)}; "
            "compare the restoration with the clean image of the same size"
        )
    return x, ref.to(x.dtype)


def _checked_range(data_range: float) -> float:
    data_range = float(data_range)
    if not data_range > 0.0:
        raise ValueError(f"data_range must be > 0, got {data_range}; images in [0, 1] use 1.0")
    return data_range


def psnr(x: Tensor, ref: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, one value per image.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W), C in {1, 3}, floating
        The restoration.
    ref : Tensor, same shape as ``x``
        The reference (clean) image.
    data_range : float, default 1.0
        Peak-to-peak range of the images (1.0 for images in [0, 1]).

    Returns
    -------
    Tensor, shape (B,)
        ``10 log10(data_range**2 / mean((x - ref)**2))`` over C, H and W; ``inf`` for identical
        images. Same device and dtype as ``x``.

    Raises
    ------
    TypeError, ValueError
        On a bad image (type, shape, dtype), mismatched shapes or ``data_range <= 0``.

    Examples
    --------
    >>> ref = torch.zeros(2, 1, 8, 8)
    >>> psnr(ref + 0.1, ref)
    tensor([20., 20.])
    """
    x, ref = _checked_pair(x, ref)
    return _psnr(x, ref, _checked_range(data_range))


def _psnr(x: Tensor, ref: Tensor, data_range: float = 1.0) -> Tensor:
    """Core of :func:`psnr` on checked ``(B, C, H, W)`` tensors."""
    mse = (x - ref).square().mean((-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)


@lru_cache(maxsize=16)
def _gaussian_taps(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The normalised 1-D Gaussian window of SSIM (11 taps, sigma 1.5)."""
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    taps = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return (taps / taps.sum()).to(device=device, dtype=dtype)


def ssim(x: Tensor, ref: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity with a Gaussian window, one value per image.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W), C in {1, 3}, floating, H and W >= 11
        The restoration.
    ref : Tensor, same shape as ``x``
        The reference (clean) image.
    data_range : float, default 1.0
        Peak-to-peak range of the images (1.0 for images in [0, 1]).

    Returns
    -------
    Tensor, shape (B,)
        Mean SSIM over channels and over every pixel whose 11x11 window fits in the image.
        Same device and dtype as ``x``.

    Raises
    ------
    TypeError, ValueError
        On a bad image (type, shape, dtype), mismatched shapes, an image smaller than 11x11
        or ``data_range <= 0``.

    Notes
    -----
    Wang et al.'s constants: Gaussian window sigma 1.5 truncated to 11x11, K1 = 0.01,
    K2 = 0.03, population (biased) covariances. The local statistics are computed only where
    the window fits ('valid' convolution); this equals scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1)``, which filters with reflected borders and then crops 5 pixels on every side,
    so its borders never enter the mean (agreement about 1e-15 in float64).

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from
    error visibility to structural similarity", IEEE TIP 13(4):600-612, 2004.

    Examples
    --------
    >>> x = torch.rand(2, 3, 16, 16)
    >>> ssim(x, x)
    tensor([1., 1.])
    >>> bool((ssim(x, 0.5 * x) < 1).all())
    True
    """
    x, ref = _checked_pair(x, ref)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim needs H and W >= {SSIM_WINDOW} (its Gaussian window), got "
            f"{tuple(x.shape[-2:])}; use a larger image"
        )
    return _ssim(x, ref, _checked_range(data_range))


def _ssim(x: Tensor, ref: Tensor, data_range: float = 1.0) -> Tensor:
    """Core of :func:`ssim` on checked ``(B, C, H, W)`` tensors."""
    batch, channels = x.shape[:2]
    taps = _gaussian_taps(x.device, x.dtype)
    stats = torch.cat([x, ref, x * x, ref * ref, x * ref], dim=1)  # (B, 5C, H, W)
    groups = stats.shape[1]
    stats = F.conv2d(stats, taps.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    stats = F.conv2d(stats, taps.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    mu_x, mu_r, xx, rr, xr = stats.split(channels, dim=1)
    var_x = xx - mu_x * mu_x
    var_r = rr - mu_r * mu_r
    cov = xr - mu_x * mu_r
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_r + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_r * mu_r + c1) * (var_x + var_r + c2)
    return (numerator / denominator).reshape(batch, -1).mean(1)
