"""Mean-only batch norm of the paper's decoder (SPEC §2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MeanOnlyBatchNorm"]


class MeanOnlyBatchNorm(nn.Module):
    """Subtract each sample's per-channel spatial mean, then add a learned bias (init 0).

    No division by a standard deviation and no scale: either would undo the Lipschitz bound.

    Examples
    --------
    >>> bn = MeanOnlyBatchNorm(4)
    >>> y = bn(torch.rand(2, 4, 5, 5))
    >>> bool(y.mean(dim=(2, 3)).abs().max() < 1e-6)
    True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = int(channels)
        self.bias = nn.Parameter(torch.zeros(self.channels))

    def forward(self, x: Tensor) -> Tensor:
        return x - x.mean(dim=(2, 3), keepdim=True) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
