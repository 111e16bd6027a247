"""The log-magnitude spectrum of an image: what the iteration scrubber shows beside the output.

The spectrum is of the grey image (:func:`~dipspec.measure.to_grey`, as the FBC uses), with the
zero frequency moved to the centre, so low frequencies sit in the middle and the noise a fit
learns last fills the corners.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .grey import to_grey

__all__ = ["log_spectrum"]


def log_spectrum(image: Tensor) -> Tensor:
    """``log(1 + |F|)`` of each image's grey version, zero frequency centred.

    Parameters
    ----------
    image : Tensor
        ``(B, C, H, W)``, C = 1 or 3.

    Returns
    -------
    Tensor
        ``(B, H, W)``.

    Examples
    --------
    >>> flat = torch.full((1, 1, 4, 4), 0.5)
    >>> spectrum = log_spectrum(flat)          # only the mean (16 × 0.5): log(1 + 8) at the centre
    >>> round(float(spectrum[0, 2, 2]), 4), float(spectrum.sum() - spectrum[0, 2, 2])
    (2.1972, 0.0)
    """
    grey = to_grey(image)[:, 0]
    spectrum = torch.fft.fftshift(torch.fft.fft2(grey), dim=(-2, -1))
    return torch.log1p(spectrum.abs())
