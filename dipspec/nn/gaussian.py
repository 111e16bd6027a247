"""Gaussian-controlled upsampling: the fixed depthwise 2× Gaussian transposed conv (SPEC §4).

:func:`gaussian_upsample` is the function and :class:`GaussianUpsample` its module form (the
kernel is a non-trainable buffer); both call the core :func:`_gaussian_upsample`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_sigma

__all__ = ["GaussianUpsample", "gaussian_kernel", "gaussian_kernel1d", "gaussian_upsample"]

# Half-pixel offsets of the 5-tap kernel (SPEC §4).
_OFFSETS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def gaussian_kernel1d(sigma: float, dtype=torch.float64, device=None) -> Tensor:
    """The normalised 5-tap Gaussian at half-pixel offsets; σ = 0 is the delta ``[0,0,1,0,0]``."""
    sigma = check_sigma(sigma)
    offsets = torch.tensor(_OFFSETS, dtype=torch.float64)
    if sigma == 0.0:
        taps = (offsets == 0).double()
    else:
        taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def gaussian_kernel(sigma: float, size: int = 5, dtype=torch.float64, device=None) -> Tensor:
    """The 5×5 kernel of SPEC §4: ``K[i, j] ∝ exp(−(d_i² + d_j²)/(2σ²))``, ``Σ K = 1``.

    Parameters
    ----------
    sigma : float
        σ ≥ 0; σ = 0 is the delta kernel (zero insertion).
    size : int
        Only 5 (the paper's kernel) is supported.

    Examples
    --------
    >>> k = gaussian_kernel(0.5)
    >>> k.shape, bool(torch.isclose(k.sum(), torch.tensor(1.0, dtype=torch.float64)))
    (torch.Size([5, 5]), True)
    >>> bool(gaussian_kernel(0.0)[2, 2] == 1.0)
    True
    """
    if size != 5:
        raise ValueError(f"gaussian_kernel supports size=5 (the paper's kernel), got {size}")
    taps = gaussian_kernel1d(sigma)
    # The 2-D Gaussian factorises, and so does its normalisation.
    return torch.outer(taps, taps).to(dtype=dtype, device=device)


def _reference_kernel(gaussian_sigma: float) -> Tensor:
    """The 5×5 kernel as the reference applies it: computed in float64, stored as float32.

    Keeping the float32 rounding (a reference quirk, ~1e-8 relative) makes float64 outputs
    agree with the authors' to machine precision. Shape ``(1, 1, 5, 5)``.
    """
    return gaussian_kernel(gaussian_sigma, dtype=torch.float32)[None, None]


def _gaussian_upsample(x: Tensor, kernels: Tensor) -> Tensor:
    """Core of :func:`gaussian_upsample`.

    ``kernels`` is ``(1, 1, 5, 5)`` (one kernel for every channel) or ``(K, 1, 5, 5)`` (a
    batch of K models side by side, each with C/K channels and its own kernel).
    """
    c = x.shape[1]
    weight = kernels.to(x.dtype).repeat_interleave(c // kernels.shape[0], dim=0)
    return F.conv_transpose2d(x, weight, stride=2, padding=2, output_padding=1, groups=c)


def gaussian_upsample(x: Tensor, gaussian_sigma: float = 0.5) -> Tensor:
    """Fixed depthwise 2× Gaussian upsampling (SPEC §4).

    ``conv_transpose2d(x, K, stride=2, padding=2, output_padding=1, groups=C)`` with the
    kernel of :func:`gaussian_kernel` for every channel, as one depthwise call (no trainable
    weight, so the backward pass is a single stride-2 depthwise correlation).

    Parameters
    ----------
    x : Tensor, shape ``(B, C, H, W)``
    gaussian_sigma : float
        σ ≥ 0.

    Notes
    -----
    The kernel is rounded to float32 before use, as in the reference (its kernel is a float32
    buffer), also for float64 inputs.

    Returns
    -------
    Tensor, shape ``(B, C, 2H, 2W)``

    Examples
    --------
    >>> x = torch.rand(1, 3, 4, 5)
    >>> gaussian_upsample(x, 0.5).shape
    torch.Size([1, 3, 8, 10])
    """
    if x.ndim != 4:
        raise ValueError(f"gaussian_upsample expects (B, C, H, W), got shape {tuple(x.shape)}")
    return _gaussian_upsample(x, _reference_kernel(gaussian_sigma).to(x.device))


class GaussianUpsample(nn.Module):
    """Module form of :func:`gaussian_upsample`; the kernel is a non-trainable buffer.

    Examples
    --------
    >>> up = GaussianUpsample(8, gaussian_sigma=0.1)
    >>> up(torch.rand(2, 8, 3, 3)).shape, len(list(up.parameters()))
    (torch.Size([2, 8, 6, 6]), 0)
    """

    def __init__(self, channels: int, gaussian_sigma: float = 0.5) -> None:
        super().__init__()
        self.channels = int(channels)
        self.gaussian_sigma = check_sigma(gaussian_sigma)
        self.register_buffer("weight", _reference_kernel(self.gaussian_sigma), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return _gaussian_upsample(x, self.weight)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, gaussian_sigma={self.gaussian_sigma}"
