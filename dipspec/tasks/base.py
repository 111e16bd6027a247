"""The task base class and the checks every task family shares (SPEC §1, §8).

A task knows no network: it holds a degradation ``degrade(x, generator) -> y``, its forward
operator ``A(x)`` and the observed image ``y``. The families live beside it, one module each.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from .._checks import as_batched_image, check_pixels

__all__ = ["Task"]


def _image(x: Tensor, name: str) -> Tensor:
    """A checked ``(B, C, H, W)`` image: finite, in [0, 1] (one host sync: entry points only)."""
    return check_pixels(as_batched_image(x, name), name)


def _noise_dtype(dtype: torch.dtype) -> torch.dtype:
    # float64 images get float64 noise; half/bfloat16 images get float32 noise, then cast.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _random_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def _reject_tensor(value: Any, parameter: str) -> None:
    if isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(
            f"{parameter} must be a number, got a {type(value).__name__}; "
            "pass the image as a keyword: clean=... or observation=..."
        )


class Task:
    """A restoration task: a degradation, its forward operator and the observed image.

    Parameters
    ----------
    clean : Tensor, shape (B, C, H, W) or (C, H, W), optional
        The clean image in [0, 1], C in (1, 3). With no ``observation``, the observation is made
        from it with ``degrade(clean, torch.Generator().manual_seed(seed))``. It also lets the
        fitting loop report PSNR.
    observation : Tensor, shape (B, C, h, w) or (C, h, w), optional
        A degraded image to restore (e.g. a real noisy photo), used as it is.
    seed : int, default 0
        Seed of the CPU generator that makes the observation from ``clean``.

    Attributes
    ----------
    name : str
        ``'denoise'``, ``'deblock'``, ``'inpaint'``, ``'super_resolve'`` or ``'enhance'``.
    default_lipschitz_lambda : float
        The paper's λ for this task (SPEC §3).
    default_iterations : int
        The paper's iteration budget (SPEC §1, §8).
    backtracking : bool
        Whether the paper restores a snapshot after a PSNR collapse (SPEC §7).

    Notes
    -----
    With neither ``clean`` nor ``observation`` the task is an operator configuration:
    `degrade` and `A` work, but `observation` raises.
    """

    name: ClassVar[str] = ""
    default_lipschitz_lambda: ClassVar[float] = 1.4
    default_iterations: ClassVar[int] = 10_000
    backtracking: ClassVar[bool] = False

    def __init__(
        self,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.seed = int(seed)
        self._clean = None if clean is None else _image(clean, "clean")
        if observation is not None:
            self._observation = _image(observation, "observation")
            self._after_observation(self._observation)
            if self._clean is not None:
                self._check_pair(self._clean, self._observation)
        elif self._clean is not None:
            generator = torch.Generator().manual_seed(self.seed)
            self._observation = self._degrade(self._clean, generator)
        else:
            self._observation = None

    # -- hooks for subclasses ---------------------------------------------------------------

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return x

    def _after_observation(self, observation: Tensor) -> None:
        """Called when a user-supplied observation is stored (subclasses may validate)."""

    def _scale(self) -> int:
        return 1

    def _check_pair(self, clean: Tensor, observation: Tensor) -> None:
        s = self._scale()
        expected = (
            observation.shape[0],
            observation.shape[1],
            observation.shape[2] * s,
            observation.shape[3] * s,
        )
        if tuple(clean.shape) != expected:
            raise ValueError(
                f"clean {tuple(clean.shape)} does not match observation "
                f"{tuple(observation.shape)} for task '{self.name}' (expected clean {expected}); "
                "pass the clean image the observation was made from, or leave clean=None"
            )

    def _parameters(self) -> str:
        return ""

    # -- public interface ---------------------------------------------------------------------

    def degrade(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Degrade a clean image: ``y = degrade(x)`` (random tasks use ``generator``).

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W) or (C, H, W)
            Clean image in [0, 1].
        generator : torch.Generator, optional
            Source of randomness (CPU generators give identical numbers on every device).

        Returns
        -------
        Tensor, shape (B, C, h, w)
            The observation, on ``x``'s device and dtype.
        """
        return self._degrade(_image(x, "x"), generator)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - the operator's conventional name
        """Forward operator applied to the network output inside the loss (identity here).

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W)
            Network output, of size `output_size`.

        Returns
        -------
        Tensor, shape of `observation`
        """
        return x

    def finalize(self, output: Tensor) -> Tensor:
        """The restoration the user sees for a network output (identity here)."""
        return output

    @property
    def clean(self) -> Tensor | None:
        """The clean image (B, C, H, W), or ``None`` when only an observation was given."""
        return self._clean

    @property
    def observation(self) -> Tensor:
        """The degraded image y (B, C, h, w) the network is fitted to."""
        if self._observation is None:
            raise ValueError(
                f"this {type(self).__name__} task has no observation; "
                f"pass clean=... or observation=..., e.g. {type(self).__name__}(clean=image)"
            )
        return self._observation

    @property
    def reference(self) -> Tensor:
        """The FBC reference: the degraded observation, not the clean image (SPEC §5)."""
        return self.observation

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) the network output must have."""
        h, w = self.observation.shape[-2:]
        s = self._scale()
        return (int(h) * s, int(w) * s)

    @property
    def channels(self) -> int:
        """Number of image channels, 1 (grey) or 3 (colour)."""
        return int(self.observation.shape[1])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy of the task with its tensors on ``device`` (and ``dtype`` if given)."""
        moved = copy.copy(self)
        for attribute in ("_clean", "_observation", "_mask"):
            value = getattr(self, attribute, None)
            if isinstance(value, Tensor):
                setattr(moved, attribute, value.to(device=device, dtype=dtype))
        return moved

    def __repr__(self) -> str:
        parts = [p for p in (self._parameters(),) if p]
        if self._observation is not None:
            parts.append(f"observation={tuple(self._observation.shape)}")
        if self._clean is not None:
            parts.append(f"clean={tuple(self._clean.shape)}")
        return f"{type(self).__name__}({', '.join(parts)})"
