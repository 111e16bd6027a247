"""Gaussian denoising: additive white Gaussian noise, identity operator (SPEC §8)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import as_batched_image, check_pixels
from .base import Task, _noise_dtype, _random_device, _reject_tensor

__all__ = ["Denoise", "add_gaussian_noise"]


def add_gaussian_noise(
    x: Tensor, sigma: float = 25 / 255, generator: torch.Generator | None = None
) -> Tensor:
    """Additive white Gaussian noise, clipped to [0, 1]: ``clip(x + N(0, sigma^2), 0, 1)``.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W)
        Clean image in [0, 1].
    sigma : float, default 25/255
        Noise standard deviation on the [0, 1] scale (the paper's σ = 25 on the 8-bit scale),
        finite and at most 1: a larger value is taken for the 0-255 scale and rejected.
    generator : torch.Generator, optional
        Source of randomness. The noise is drawn on the generator's device (CPU by default)
        and then moved to ``x``'s device, so a CPU generator gives the same numbers on any device.

    Returns
    -------
    Tensor, shape (B, C, H, W)
        Noisy image in [0, 1], on ``x``'s device and dtype.

    Notes
    -----
    SPEC §8 (denoising), as the reference computes it:
    ``np.clip(x + np.random.normal(scale=sigma, size=x.shape), 0, 1)``.

    Examples
    --------
    >>> x = torch.full((1, 1, 8, 8), 0.5)
    >>> y = add_gaussian_noise(x, 0.1, torch.Generator().manual_seed(0))
    >>> y.shape, bool(y.min() >= 0) and bool(y.max() <= 1)
    (torch.Size([1, 1, 8, 8]), True)
    """
    x = check_pixels(as_batched_image(x, "x"), "x")
    sigma = _check_sigma(sigma)
    noise = torch.randn(
        x.shape,
        generator=generator,
        dtype=_noise_dtype(x.dtype),
        device=_random_device(generator),
    )
    return (x + sigma * noise.to(device=x.device, dtype=x.dtype)).clamp(0, 1)


def _check_sigma(sigma: float) -> float:
    _reject_tensor(sigma, "sigma")
    value = float(sigma)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(
            f"sigma must be a finite noise std >= 0 on the [0, 1] scale, got {sigma}; "
            "for the paper's sigma = 25 (8-bit scale) pass sigma=25/255"
        )
    if value > 1.0:
        raise ValueError(
            f"sigma={sigma} is larger than the whole [0, 1] pixel range and would clip almost "
            f"every pixel; it looks like the 0-255 scale: pass sigma={sigma}/255 "
            f"(= {value / 255:.4g})"
        )
    return value


class Denoise(Task):
    """Gaussian denoising: ``y = clip(x + N(0, sigma^2), 0, 1)``, ``A`` = identity (SPEC §8).

    Parameters
    ----------
    sigma : float, default 25/255
        Noise standard deviation on the [0, 1] scale, finite, in [0, 1] (``25/255`` for the
        paper's 8-bit σ = 25; ``sigma=25`` raises ``ValueError``).
    clean, observation, seed
        See `Task`.

    Examples
    --------
    >>> x = torch.full((1, 1, 32, 32), 0.5)
    >>> task = Denoise(25 / 255, clean=x, seed=1)
    >>> task.observation.shape, task.default_lipschitz_lambda, task.backtracking
    (torch.Size([1, 1, 32, 32]), 1.4, True)
    """

    name = "denoise"
    default_lipschitz_lambda = 1.4
    default_iterations = 10_000
    backtracking = True

    def __init__(
        self,
        sigma: float = 25 / 255,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.sigma = _check_sigma(sigma)
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return add_gaussian_noise(x, self.sigma, generator)

    def _parameters(self) -> str:
        return f"sigma={self.sigma:.4g}"
