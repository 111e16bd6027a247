"""Frequency-band correspondence (FBC): the band meter of the deep image prior (SPEC §5).

Tensors in, tensors out: this module imports only torch and never syncs with the host, so the
training loop may call :func:`_fbc` (the core of :func:`fbc`) every iteration.
:func:`radial_profile` is the azimuthally averaged power spectrum, for plotting spectra.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor, nn

from .._checks import as_batched_image
from .grey import _to_grey

__all__ = ["FrequencyBandCorrespondence", "fbc", "radial_profile"]

#: Added to the reference's magnitude spectrum before dividing (SPEC §5, step 3).
FBC_EPS = 1e-8


@lru_cache(maxsize=32)
def _band_weights(
    height: int, width: int, bands: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``(H * (W // 2 + 1), bands)`` matrix turning a flattened ``rfft2`` ratio into band means.

    Entry ``[i, k]`` is ``multiplicity(i) / count(k)`` when rfft bin ``i`` lies in band ``k``
    and 0 otherwise. ``multiplicity`` is 2 for a bin whose conjugate partner is not stored by
    ``rfft2`` and 1 otherwise, so the product equals the band mean over the full, centred
    spectrum. Both a frequency and its conjugate sit at the same radius (see ``_fbc``).
    """
    # Signed frequency of each unshifted FFT index: after fftshift, frequency f sits at index
    # f + floor(N/2), so its distance from the centre floor(N/2) is |f| (SPEC §5, step 4); the
    # even-N Nyquist term +-N/2 is at distance N/2 either way.
    fy = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64)
    fx = torch.fft.rfftfreq(width, d=1.0 / width, dtype=torch.float64)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)  # (H, W//2 + 1)
    limits = torch.arange(1, bands + 1, dtype=torch.float64) * (width // 2) / bands  # R_k
    band = torch.bucketize(radius, limits, right=False)  # band k: R_{k-1} < r <= R_k
    multiplicity = torch.full_like(radius, 2.0)
    multiplicity[:, 0] = 1.0
    if width % 2 == 0:
        multiplicity[:, -1] = 1.0
    onehot = torch.nn.functional.one_hot(band.reshape(-1), bands + 1)[:, :bands].to(torch.float64)
    weights = onehot * multiplicity.reshape(-1, 1)
    counts = weights.sum(0)
    if bool((counts == 0).any()):
        raise ValueError(
            f"an image of {height}x{width} leaves some of the {bands} FBC bands empty; "
            "use a larger image or fewer bands"
        )
    return (weights / counts).to(device=device, dtype=dtype)


def _fbc(output_grey: Tensor, reference_grey: Tensor, band_weights: Tensor) -> Tensor:
    """Core of :func:`fbc` on grey ``(B, 1, H, W)`` tensors, with cached ``band_weights``."""
    return _fbc_against(output_grey, _reference_denominator(reference_grey), band_weights)


def _reference_denominator(reference_grey: Tensor) -> Tensor:
    """``|rfft2(y)| + 1e-8``: the reference's half of FBC, which a fit computes once."""
    return torch.fft.rfft2(reference_grey).abs() + FBC_EPS


def _fbc_against(output_grey: Tensor, denominator: Tensor, band_weights: Tensor) -> Tensor:
    """FBC of grey outputs against a precomputed :func:`_reference_denominator`."""
    ratio = (torch.fft.rfft2(output_grey).abs() / denominator).clamp_(0.0, 1.0)
    return ratio.reshape(ratio.shape[0], -1) @ band_weights


def _checked_bands(bands: int) -> int:
    if isinstance(bands, bool) or not isinstance(bands, int) or bands < 1:
        raise ValueError(f"bands must be a positive int, got {bands!r}; the paper uses 5")
    return bands


def fbc(output: Tensor, reference: Tensor, bands: int = 5) -> Tensor:
    """Frequency-band correspondence of ``output`` with the degraded ``reference`` (SPEC §5).

    Parameters
    ----------
    output : Tensor, shape (B, C, H, W) or (C, H, W), C in {1, 3}, floating, in [0, 1]
        The network output.
    reference : Tensor, same shape as ``output``
        The degraded observation ``y`` (not the clean image).
    bands : int, default 5
        Number of radial bands; band ``k`` has outer radius ``floor(W/2) * k / bands``.

    Returns
    -------
    Tensor, shape (B, bands)
        Mean of ``clip(|F(out)| / (|F(y)| + 1e-8), 0, 1)`` over each band, lowest band first;
        same device and dtype as ``output``.

    Raises
    ------
    TypeError, ValueError
        On a non-tensor or non-floating input, a bad shape, mismatched shapes or a bad ``bands``.

    Notes
    -----
    As the reference computes it: colour images go through :func:`~dipspec.measure.to_grey`;
    the centre of the shifted spectrum is ``(floor(W/2), floor(H/2))`` in (column, row); the
    radii scale with the *width* only, so on a non-square image the bands are circles of radius
    up to ``floor(W/2)`` and the corners beyond it belong to no band. Band 1 includes the DC
    term (``r <= R_1``).

    Because ``|F|`` of a real image is conjugate-symmetric and a frequency and its conjugate sit
    at the same radius, the core uses ``rfft2`` and weights each stored bin by its multiplicity;
    the band masks are cached per (H, W, bands, device, dtype), so a call costs two ``rfft2``,
    one division and one small matrix product.

    References
    ----------
    Shi, Mettes, Maji & Snoek, "On Measuring and Controlling the Spectral Bias of the Deep
    Image Prior", IJCV 130(4):885-908, 2022, §3.

    Examples
    --------
    >>> y = torch.rand(2, 3, 32, 32)
    >>> fbc(y, y).shape
    torch.Size([2, 5])
    >>> bool(torch.allclose(fbc(y, y), torch.ones(2, 5)))
    True
    """
    output = as_batched_image(output, "output")
    reference = as_batched_image(reference, "reference")
    if output.shape != reference.shape:
        raise ValueError(
            f"output and reference must have the same shape, got {tuple(output.shape)} and "
            f"{tuple(reference.shape)}; compare the output with the degraded image y it fits"
        )
    bands = _checked_bands(bands)
    _, _, height, width = output.shape
    weights = _band_weights(height, width, bands, output.device, output.dtype)
    return _fbc(_to_grey(output), _to_grey(reference.to(output.dtype)), weights)


class FrequencyBandCorrespondence(nn.Module):
    """Module form of :func:`fbc`; holds only the number of bands.

    Examples
    --------
    >>> meter = FrequencyBandCorrespondence(bands=5)
    >>> y = torch.rand(1, 1, 16, 16)
    >>> bool(torch.equal(meter(y, y), fbc(y, y)))
    True
    """

    def __init__(self, bands: int = 5):
        super().__init__()
        self.bands = _checked_bands(bands)

    def forward(self, output: Tensor, reference: Tensor) -> Tensor:
        return fbc(output, reference, self.bands)

    def extra_repr(self) -> str:
        return f"bands={self.bands}"


@lru_cache(maxsize=16)
def _radial_weights(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(H * W, R)`` matrix averaging an unshifted power spectrum over integer radius bins."""
    fy = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, d=1.0 / width, dtype=torch.float64)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    max_radius = min(height, width) // 2
    index = torch.round(radius).long().reshape(-1)  # bin k holds k - 0.5 <= r < k + 0.5
    keep = index <= max_radius
    onehot = torch.zeros(height * width, max_radius + 1, dtype=torch.float64)
    onehot[keep.nonzero().squeeze(1), index[keep]] = 1.0
    return (onehot / onehot.sum(0)).to(device=device, dtype=dtype)


def radial_profile(image: Tensor) -> Tensor:
    """Azimuthally averaged power spectrum of the grey image, for plotting spectra.

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W) or (C, H, W), C in {1, 3}, floating, in [0, 1]

    Returns
    -------
    Tensor, shape (B, floor(min(H, W) / 2) + 1)
        Entry ``k`` is the mean of ``|fftshift(fft2(grey))|**2`` over the frequencies whose
        distance from the centre ``(floor(W/2), floor(H/2))`` rounds to ``k``; entry 0 is the
        squared DC term. Same device and dtype as ``image``.

    Raises
    ------
    TypeError, ValueError
        On a non-tensor, non-floating or badly shaped ``image``.

    Notes
    -----
    Frequencies are in cycles per image (index units of the shifted spectrum), so a bin mixes
    the same integer radius in both axes even on a non-square image. Radii beyond
    ``floor(min(H, W) / 2)`` (the corners) are left out. No normalisation is applied.

    Examples
    --------
    >>> x = torch.rand(2, 3, 16, 12)
    >>> radial_profile(x).shape
    torch.Size([2, 7])
    >>> flat = torch.full((1, 1, 8, 8), 0.5)
    >>> bool(torch.allclose(radial_profile(flat)[0], torch.tensor([1024.0, 0, 0, 0, 0])))
    True
    """
    grey = _to_grey(as_batched_image(image, "image"))
    batch, _, height, width = grey.shape
    power = torch.fft.fft2(grey).abs().square()
    weights = _radial_weights(height, width, grey.device, grey.dtype)
    return power.reshape(batch, -1) @ weights
