"""Super-resolution: Ulyanov et al.'s Lanczos-2 downsampler, degradation and operator (SPEC §8)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import as_batched_image
from .base import Task, _image, _reject_tensor

__all__ = ["SuperResolve", "lanczos2_downsample", "lanczos2_kernel"]


def lanczos2_kernel(factor: int) -> Tensor:
    """The Lanczos-2 anti-aliasing kernel of Ulyanov et al.'s ``Downsampler`` (phase 0.5).

    Parameters
    ----------
    factor : int
        Downsampling factor, ≥ 2.

    Returns
    -------
    Tensor, shape (4 factor, 4 factor), float64
        Separable kernel normalised to sum 1.

    Notes
    -----
    Reproduces ``get_kernel(factor, 'lanczos', phase=0.5, kernel_width=4 factor + 1, support=2)``
    of ``models/downsampler.py`` in the deep-image-prior repository: with centre
    c = (4 factor + 2) / 2 and d_i = |i + 0.5 − c| / factor for i = 1 … 4 factor,
    k(d) = 2 sin(π d) sin(π d / 2) / (π² d²) (k(0) = 1), K[i, j] = k(d_i) k(d_j) / Σ.
    The phase-0.5 kernel is one pixel narrower than ``kernel_width``, as in the reference.

    References
    ----------
    Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018 / IJCV 2020.

    Examples
    --------
    >>> k = lanczos2_kernel(4)
    >>> k.shape, bool(torch.isclose(k.sum(), torch.tensor(1.0, dtype=k.dtype)))
    (torch.Size([16, 16]), True)
    """
    factor = _check_factor(factor)
    support = 2
    kernel_width = 2 * support * factor + 1
    center = (kernel_width + 1) / 2.0
    index = np.arange(1, kernel_width, dtype=np.float64)  # phase 0.5: width - 1 taps
    distance = np.abs(index + 0.5 - center) / factor
    with np.errstate(divide="ignore", invalid="ignore"):
        taps = (
            support
            * np.sin(np.pi * distance)
            * np.sin(np.pi * distance / support)
            / (np.pi * np.pi * distance * distance)
        )
    taps = np.where(distance == 0, 1.0, taps)
    kernel = np.outer(taps, taps)
    kernel /= kernel.sum()
    return torch.from_numpy(kernel)


def _lanczos2_padding(factor: int) -> tuple[int, int, int, int]:
    # Ulyanov's preserve_size pad for an even-sized kernel is (size - factor) / 2 = 1.5 factor on
    # each side. For odd factors that is not an integer (the reference truncates it and loses one
    # output pixel); we pad floor / ceil so that the output is exactly H / factor.
    total = 3 * factor
    before, after = total // 2, total - total // 2
    return (before, after, before, after)


def _lanczos2_downsample(x: Tensor, weight: Tensor, factor: int) -> Tensor:
    """Core of `lanczos2_downsample`: ``weight`` is (C, 1, k, k) on ``x``'s device and dtype."""
    padded = F.pad(x, _lanczos2_padding(factor), mode="replicate")
    return F.conv2d(padded, weight, stride=factor, groups=x.shape[1])


def lanczos2_downsample(x: Tensor, factor: int = 4) -> Tensor:
    """Downsample by ``factor`` with the Lanczos-2 ``Downsampler`` of Ulyanov et al.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W)
        Image; H and W should be multiples of ``factor``.
    factor : int, default 4
        Downsampling factor, ≥ 2 (the paper's super-resolution uses 4 and 8).

    Returns
    -------
    Tensor, shape (B, C, H // factor, W // factor)

    Notes
    -----
    ``Downsampler(n_planes=C, factor, kernel_type='lanczos2', phase=0.5, preserve_size=True)``:
    replication padding of 1.5 × factor pixels per side, then a per-channel convolution with
    `lanczos2_kernel` at stride ``factor``. For odd factors the padding is split floor / ceil so
    that the output keeps H / factor rows (the reference loses one). It is linear and maps a
    constant image to the same constant. SPEC §8 (super-resolution).

    Examples
    --------
    >>> x = torch.full((1, 3, 32, 32), 0.25)
    >>> y = lanczos2_downsample(x, 4)
    >>> y.shape, bool(torch.allclose(y, torch.full_like(y, 0.25)))
    (torch.Size([1, 3, 8, 8]), True)
    """
    x = as_batched_image(x, "x")
    factor = _check_factor(factor)
    weight = lanczos2_kernel(factor).to(device=x.device, dtype=x.dtype)
    weight = weight.expand(x.shape[1], 1, *weight.shape).contiguous()
    return _lanczos2_downsample(x, weight, factor)


def _check_factor(factor: int) -> int:
    _reject_tensor(factor, "factor")
    if isinstance(factor, bool) or int(factor) != factor or int(factor) < 2:
        raise ValueError(
            f"factor must be an integer >= 2, got {factor}; the paper uses factor=4 or factor=8"
        )
    return int(factor)


class SuperResolve(Task):
    """Super-resolution: ``y = D(x)`` with Ulyanov et al.'s Lanczos-2 downsampler ``D = A``.

    Parameters
    ----------
    factor : int, default 4
        Downsampling factor, an integer ≥ 2 (paper: 4 and 8); see `lanczos2_downsample`.
    clean, observation, seed
        See `Task`. A clean image whose height or width is not a multiple of ``factor`` is
        centre-cropped to one, with a warning. The degradation is noise-free:
        ``y = clip(A(x), 0, 1)`` (the clip only touches Lanczos overshoot at strong edges).

    Notes
    -----
    `output_size` is ``factor`` × the observation size: the network produces the
    high-resolution image and the loss compares its downsampled version with ``y`` (SPEC §8).

    Examples
    --------
    >>> task = SuperResolve(4, clean=torch.rand(1, 3, 32, 32))
    >>> task.observation.shape, task.output_size
    (torch.Size([1, 3, 8, 8]), (32, 32))
    """

    name = "super_resolve"
    default_lipschitz_lambda = 1.4
    default_iterations = 10_000
    backtracking = False

    def __init__(
        self,
        factor: int = 4,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.factor = _check_factor(factor)
        self._kernel = lanczos2_kernel(self.factor)
        self._weights: dict[tuple[torch.device, torch.dtype, int], Tensor] = {}
        if clean is not None:
            clean = self._crop(as_batched_image(clean, "clean"), stacklevel=3)
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _scale(self) -> int:
        return self.factor

    def _crop(self, x: Tensor, stacklevel: int) -> Tensor:
        h, w = x.shape[-2:]
        new_h, new_w = h - h % self.factor, w - w % self.factor
        if (new_h, new_w) == (h, w):
            return x
        if new_h == 0 or new_w == 0:
            raise ValueError(
                f"image {tuple(x.shape)} is smaller than factor={self.factor}; "
                "use a larger image or a smaller factor"
            )
        warnings.warn(
            f"image size {h}x{w} is not a multiple of factor={self.factor}; centre-cropped to "
            f"{new_h}x{new_w} (crop it yourself to silence this warning)",
            stacklevel=stacklevel,
        )
        top, left = (h - new_h) // 2, (w - new_w) // 2
        return x[..., top : top + new_h, left : left + new_w]

    def _weight(self, x: Tensor) -> Tensor:
        key = (x.device, x.dtype, x.shape[1])
        weight = self._weights.get(key)
        if weight is None:
            weight = self._kernel.to(device=x.device, dtype=x.dtype)
            weight = weight.expand(x.shape[1], 1, *weight.shape).contiguous()
            self._weights[key] = weight
        return weight

    def degrade(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Downsample ``x`` (centre-cropped to a multiple of ``factor``, with a warning)."""
        x = self._crop(_image(x, "x"), stacklevel=3)
        return self._degrade(x, generator)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        # Lanczos lobes overshoot near strong edges: clip so y is an image in [0, 1], like the
        # reference's 8-bit low-resolution image.
        return self.A(x).clamp(0, 1)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        """Lanczos-2 downsampling by ``factor`` (no checks: this runs every iteration)."""
        return _lanczos2_downsample(x, self._weight(x), self.factor)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        moved = super().to(device, dtype)
        moved._weights = {}
        return moved

    def _parameters(self) -> str:
        return f"factor={self.factor}"
