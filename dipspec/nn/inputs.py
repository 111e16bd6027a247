"""The fixed network code ``z`` (SPEC §2 "Inputs"): Fourier features, noise or a meshgrid."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .init import _generator

__all__ = ["INPUT_KINDS", "make_input"]

INPUT_KINDS = ("fourier", "noise", "meshgrid")


def make_input(kind: str, channels: int, spatial_size: int | tuple[int, int], seed: int = 0,
               var: float | None = None) -> Tensor:
    """The fixed network code ``z`` of shape ``(1, channels, h, w)`` (SPEC §2 "Inputs").

    Parameters
    ----------
    kind : {"fourier", "noise", "meshgrid"}
        ``fourier`` (the paper's): ``u ~ U(0, 1)`` with ``channels // 2`` channels, scaled by
        ``var`` (default 1.0), returned as ``[sin 2πu, cos 2πu]``. ``noise``: ``U(0, 1) × var``
        (default 0.1, Ulyanov et al.). ``meshgrid``: 2 channels of x and y in [0, 1].
    channels : int
    spatial_size : int or (h, w)
    seed : int

    Examples
    --------
    >>> make_input("fourier", 32, (2, 3)).shape
    torch.Size([1, 32, 2, 3])
    >>> bool(torch.equal(make_input("noise", 4, 5, seed=1), make_input("noise", 4, 5, seed=1)))
    True
    """
    h, w = (spatial_size, spatial_size) if isinstance(spatial_size, int) else spatial_size
    gen = _generator(seed)
    if kind == "fourier":
        if channels % 2:
            raise ValueError(f"fourier input needs an even channel count, got {channels}")
        u = torch.rand(1, channels // 2, h, w, generator=gen) * (1.0 if var is None else var)
        return torch.cat([torch.sin(2 * math.pi * u), torch.cos(2 * math.pi * u)], dim=1)
    if kind == "noise":
        return torch.rand(1, channels, h, w, generator=gen) * (0.1 if var is None else var)
    if kind == "meshgrid":
        if channels != 2:
            raise ValueError(f"meshgrid input has 2 channels, got channels={channels}")
        ys = torch.linspace(0, 1, h) if h > 1 else torch.zeros(1)
        xs = torch.linspace(0, 1, w) if w > 1 else torch.zeros(1)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y])[None]
    raise ValueError(f"unknown input kind {kind!r}; choose one of {INPUT_KINDS}")
