"""Shared pieces of the NumPy reference computations the tests compare dipspec against."""

from __future__ import annotations

import numpy as np
import torch

#: Golden cases of ``tests/data/golden/expected.json`` (see its README).
CASES = ["camera_96x128", "astronaut_rgb_64x64", "random_64x48"]
#: Devices the instruments are tested on: the CPU, and CUDA where present.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def nchw(array: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """H x W or H x W x 3 array -> (1, C, H, W) tensor."""
    x = torch.from_numpy(np.ascontiguousarray(array))
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
    return x[None].to(dtype)


def grey_np(array: np.ndarray) -> np.ndarray:
    """SPEC §5's grey conversion in NumPy (the reference's weights, clipped to [0, 1])."""
    if array.ndim == 3:
        return np.clip(
            0.2989 * array[..., 0] + 0.5870 * array[..., 1] + 0.1140 * array[..., 2], 0, 1
        )
    return array
