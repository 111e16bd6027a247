"""Seeded, device-independent weight initialisation of every dipspec network (SPEC §2)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["init_weights"]


def _generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def init_weights(module: nn.Module, seed: int | torch.Generator | None = None,
                 a: float = 0.0) -> nn.Module:
    """Kaiming-uniform (fan-in, slope ``a``) weights and PyTorch's uniform biases, seeded.

    Walks ``module`` in registration order, so the same seed gives the same network on any
    device. Returns ``module``.
    """
    gen = _generator(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                weight = torch.empty(layer.weight.shape)
                nn.init.kaiming_uniform_(weight, a=a, mode="fan_in", nonlinearity="leaky_relu",
                                         generator=gen)
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    bias = torch.empty(layer.bias.shape).uniform_(-bound, bound, generator=gen)
                    layer.bias.copy_(bias)
    return module
