"""Detail enhancement: fit the image itself and add back the detail layer (SPEC §8)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Task

__all__ = ["Enhance", "enhance_details"]


def enhance_details(x: Tensor, output: Tensor) -> Tensor:
    """Detail enhancement: ``clip(x + clip(x − output, 0, 1), 0, 1)`` (SPEC §8).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        The image being enhanced (the observation).
    output : Tensor, shape (B, C, H, W)
        The network's (smooth) fit of ``x``.

    Returns
    -------
    Tensor, shape (B, C, H, W)
        The enhanced image in [0, 1].

    Notes
    -----
    Reference quirk: only the positive part of the detail layer ``x − output`` is added back.

    Examples
    --------
    >>> x = torch.tensor([0.5, 0.5]).reshape(1, 1, 1, 2)
    >>> f = torch.tensor([0.25, 0.75]).reshape(1, 1, 1, 2)
    >>> enhance_details(x, f).flatten().tolist()
    [0.75, 0.5]
    """
    detail = (x - output).clamp(0, 1)
    return (x + detail).clamp(0, 1)


class Enhance(Task):
    """Detail enhancement: fit ``x`` itself (``y = x``, ``A`` = identity) for 100 iterations.

    `finalize` returns ``clip(x + clip(x − f, 0, 1), 0, 1)`` with ``x`` the observation and ``f``
    the network output (SPEC §8; see `enhance_details`).

    Examples
    --------
    >>> x = torch.full((1, 1, 4, 4), 0.5)
    >>> task = Enhance(clean=x)
    >>> task.default_iterations, float(task.finalize(torch.full_like(x, 0.25))[0, 0, 0, 0])
    (100, 0.75)
    """

    name = "enhance"
    default_lipschitz_lambda = 1.0
    default_iterations = 100
    backtracking = False

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return x.clone()

    def finalize(self, output: Tensor) -> Tensor:
        """The enhanced image ``clip(x + clip(x − output, 0, 1), 0, 1)``."""
        return enhance_details(self.observation, output)
