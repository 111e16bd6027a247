"""A stop rule of ours from the noise level: the discrepancy principle (:class:`Discrepancy`).

Morozov's discrepancy principle, applied to DIP: a fit that reproduces the observation more
closely than the noise it carries is fitting the noise. With ``y = x + n`` and the output ``z``,
``mean (z − y)² ≈ mean (z − x)² + σ²`` while ``z − x`` is uncorrelated with the noise, so the
loss falls to σ² about when ``z`` is nearest the clean image, and below it only by fitting ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import Tensor

from .stop_base import StopRule, _meter

__all__ = ["Discrepancy"]


class Discrepancy(StopRule):
    """Stop when the fit's loss first falls to the noise variance (the discrepancy principle).

    Parameters
    ----------
    noise_sigma : float, optional
        The noise's standard deviation on the image's [0, 1] scale. Default: the estimate a fit
        hands over when it starts (:meth:`prepare`; :func:`dipspec.data.estimate_noise_sigma`
        of the observation).
    tolerance : float, default 1.0
        Fire when ``loss <= tolerance · σ²`` (Morozov's τ; 1 is the principle itself).

    Notes
    -----
    Reads ``meters["loss"]``, the mean squared difference between ``A(output)`` and the
    observation. Nothing in it depends on the image size, the network's width or the iteration
    budget: only on the noise in the observation. It has no window and no patience, so it fires
    at the iteration it detects, and it costs nothing per step. It needs noise: on an
    observation without it (inpainting, super-resolution without noise) the estimate is
    meaningless — :func:`dipspec.fit`'s recommended rule uses it only for denoising.

    Examples
    --------
    >>> rule = Discrepancy(noise_sigma=0.1)
    >>> losses = [0.05 / (1 + t / 50) for t in range(500)]  # reaches 0.01 at t = 200
    >>> fired = [rule.update(t, None, {"loss": v}) for t, v in enumerate(losses)]
    >>> rule.stop_iteration
    200
    """

    name = "discrepancy"
    needs_meters = ("loss",)
    needs_noise_estimate = True
    _state_keys = ("sigma",)

    def __init__(self, noise_sigma: float | None = None, tolerance: float = 1.0) -> None:
        if noise_sigma is not None and not (math.isfinite(noise_sigma) and noise_sigma > 0):
            raise ValueError(f"noise_sigma must be a positive number on the [0, 1] scale, got "
                             f"{noise_sigma!r}; e.g. 25/255, or None to estimate it")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be > 0, got {tolerance!r}; 1.0 is the principle")
        self.noise_sigma, self.tolerance = noise_sigma, float(tolerance)
        super().__init__()

    def config(self) -> dict:
        return {"noise_sigma": self.noise_sigma, "tolerance": self.tolerance}

    def _reset(self) -> None:
        self.sigma = self.noise_sigma  # the σ in use: given, or estimated by prepare()

    def prepare(self, observation: Tensor, noise_sigma: float | None = None) -> None:
        if self.noise_sigma is None:
            self.sigma = noise_sigma

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        if self.sigma is None:
            raise ValueError("Discrepancy has no noise level: give noise_sigma=, or "
                             "prepare(observation, noise_sigma=...) first (a fit does, with "
                             "dipspec.data.estimate_noise_sigma)")
        loss = _meter(meters, "loss")
        if math.isfinite(loss) and loss <= self.tolerance * self.sigma ** 2:
            return iteration
        return None
