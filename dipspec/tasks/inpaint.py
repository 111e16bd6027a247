"""Inpainting: a 0/1 pixel mask, ``y = x ⊙ m`` and ``A(x) = x ⊙ m`` (SPEC §8)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_batched_image
from .base import Task, _random_device, _reject_tensor

__all__ = ["Inpaint", "bernoulli_mask"]


def bernoulli_mask(
    height: int,
    width: int,
    keep: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Random pixel mask, each pixel kept (1) with probability ``keep``, else dropped (0).

    Parameters
    ----------
    height, width : int
        Mask size.
    keep : float, default 0.5
        Probability in (0, 1] that a pixel is observed (the paper uses 0.5).
    generator : torch.Generator, optional
        Source of randomness; the mask is drawn on its device (CPU by default), then moved.
    device, dtype : optional
        Where the returned mask lives, and its floating dtype.

    Returns
    -------
    Tensor, shape (1, 1, height, width)
        0/1 float mask that broadcasts over batch and channels.

    Notes
    -----
    The paper's own Bernoulli masks were drawn with NumPy (seed 100) and ship as HDF5 files:
    load them with ``dipspec.data.paper_mask`` to reproduce its inpainting numbers.

    Examples
    --------
    >>> m = bernoulli_mask(64, 64, keep=0.5, generator=torch.Generator().manual_seed(0))
    >>> m.shape, abs(float(m.mean()) - 0.5) < 0.05
    (torch.Size([1, 1, 64, 64]), True)
    """
    keep = _check_keep(keep)
    uniform = torch.rand(
        (1, 1, int(height), int(width)), generator=generator, device=_random_device(generator)
    )
    return (uniform < keep).to(dtype=dtype, device=device)


def _check_keep(keep: float) -> float:
    _reject_tensor(keep, "keep")
    value = float(keep)
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"keep must be the probability in (0, 1] that a pixel is observed, got {keep}; "
            "the paper's Bernoulli masks keep half the pixels: keep=0.5"
        )
    return value


def _as_mask(mask: Any) -> Tensor:
    """Convert a user mask (tensor, array, bool/int/float) to a 0/1 float (B, 1|C, H, W) tensor."""
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    elif not isinstance(mask, Tensor):
        raise TypeError(
            f"mask must be a torch.Tensor or numpy array, got {type(mask).__name__}; "
            "load the paper's masks with dipspec.data.paper_mask"
        )
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        if mask.shape[0] != 1:
            raise ValueError(
                f"a 3-D mask must be (1, H, W), got {tuple(mask.shape)}; "
                "pass (H, W), (1, H, W) or (B, 1, H, W)"
            )
        mask = mask[None]
    elif mask.ndim != 4:
        raise ValueError(f"mask must be (H, W), (1, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        mask = mask.to(torch.float32)
    elif not mask.is_floating_point():
        mask = mask.to(torch.float32)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(_mask_message(mask))
    return mask


def _mask_message(mask: Tensor) -> str:
    """Why a mask is not 0/1 (built only on failure)."""
    non_finite = int((~torch.isfinite(mask)).sum())
    if non_finite:
        return (
            f"mask contains {non_finite} NaN or inf value(s); it must contain only 0 (missing "
            "pixel) and 1 (observed pixel): rebuild it, e.g. mask = (mask > 0.5).float()"
        )
    return (
        "mask must contain only 0 (missing pixel) and 1 (observed pixel); "
        "threshold it first, e.g. mask = (mask > 0.5).float()"
    )


class Inpaint(Task):
    """Inpainting: ``y = x ⊙ m`` and ``A(x) = x ⊙ m`` with a 0/1 mask ``m`` (SPEC §8).

    Parameters
    ----------
    mask : Tensor or ndarray, optional
        0/1 mask (1 = observed pixel), (H, W), (1, H, W) or (1 | B, 1 | C, H, W); bool, int and
        float are accepted. If omitted, a Bernoulli(``keep``) mask of shape (1, 1, H, W), shared by
        the batch and the channels, is drawn by the first `degrade` (from its generator) and kept,
        so `A` uses the same mask.
    keep : float, default 0.5
        Probability in (0, 1] that a pixel is observed, for a drawn mask.
    clean, observation, seed
        See `Task`. An ``observation`` needs its ``mask``.

    Raises
    ------
    ValueError
        If the mask does not match the image, or an observation is given without a mask.

    Examples
    --------
    >>> task = Inpaint(keep=0.5, clean=torch.rand(1, 1, 32, 32), seed=0)
    >>> y = task.observation
    >>> bool(torch.equal(task.A(y), y)), task.mask.shape
    (True, torch.Size([1, 1, 32, 32]))
    """

    name = "inpaint"
    default_lipschitz_lambda = 1.6
    default_iterations = 10_000
    backtracking = False

    def __init__(
        self,
        mask: Tensor | np.ndarray | None = None,
        keep: float = 0.5,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.keep = _check_keep(keep)
        self._mask = None if mask is None else _as_mask(mask)
        if observation is not None and self._mask is None:
            raise ValueError(
                "Inpaint(observation=...) needs the mask of the observed pixels; "
                "pass mask=... (1 = observed), e.g. from dipspec.data.paper_mask"
            )
        if clean is not None and self._mask is not None:
            reference = as_batched_image(clean, "clean")
            self._check_mask(self._mask, reference)
            self._mask = self._mask.to(device=reference.device, dtype=reference.dtype)
        super().__init__(clean=clean, observation=observation, seed=seed)

    @property
    def mask(self) -> Tensor | None:
        """The 0/1 mask (1 = observed pixel), or ``None`` until one is drawn."""
        return self._mask

    @staticmethod
    def _check_mask(mask: Tensor, image: Tensor) -> None:
        b, c, h, w = image.shape
        if (
            mask.shape[-2:] != image.shape[-2:]
            or mask.shape[0] not in (1, b)
            or mask.shape[1] not in (1, c)
        ):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}; "
                f"the mask must be (1 or {b}, 1, {h}, {w}): crop or resize both the same way"
            )

    def _after_observation(self, observation: Tensor) -> None:
        self._check_mask(self._mask, observation)
        self._mask = self._mask.to(device=observation.device, dtype=observation.dtype)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        if self._mask is None:
            h, w = x.shape[-2:]
            self._mask = bernoulli_mask(h, w, self.keep, generator, device=x.device, dtype=x.dtype)
        else:
            self._check_mask(self._mask, x)
        return x * self._mask.to(device=x.device, dtype=x.dtype)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        """Multiply by the mask: ``x ⊙ m``."""
        if self._mask is None:
            raise ValueError(
                "Inpaint has no mask yet; pass mask=... or clean=..., or call degrade() first"
            )
        return x * self._mask.to(device=x.device, dtype=x.dtype)

    def _parameters(self) -> str:
        if self._mask is None:
            return f"keep={self.keep:.3g}"
        return f"mask={tuple(self._mask.shape)}"
