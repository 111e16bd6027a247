"""The noise level of an image: :func:`estimate_noise_sigma` (scikit-image's estimator)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

__all__ = ["estimate_noise_sigma"]


def estimate_noise_sigma(image: Tensor) -> float:
    """The standard deviation of additive white Gaussian noise in an image, on its own scale.

    scikit-image's :func:`~skimage.restoration.estimate_sigma` (Donoho and Johnstone's robust
    median of the finest diagonal db2 wavelet band, divided by 0.6745), averaged over the
    channels. :class:`dipspec.measure.Discrepancy` stops a fit where its loss reaches the
    square of this; a fit computes it once, on the host.

    Parameters
    ----------
    image : Tensor
        ``(1, C, H, W)`` or ``(C, H, W)``, at least 2 × 2.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> noisy = 0.5 + 0.1 * torch.randn(1, 1, 128, 128, generator=g)
    >>> round(estimate_noise_sigma(noisy), 2)
    0.1
    """
    from skimage.restoration import estimate_sigma

    x = image.detach().float().cpu()
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"estimate_noise_sigma takes one image, got a batch of "
                             f"{x.shape[0]}; pass image[i:i + 1]")
        x = x[0]
    if x.ndim != 3 or min(x.shape[-2:]) < 2:
        raise ValueError(f"estimate_noise_sigma needs (1, C, H, W) or (C, H, W) of at least "
                         f"2 x 2, got shape {tuple(image.shape)}")
    return float(estimate_sigma(np.moveaxis(x.numpy(), 0, -1), channel_axis=-1,
                                average_sigmas=True))
