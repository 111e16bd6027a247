"""What the engine measures each logged iteration, and its backtracking (SPEC §5–§7).

Every function here works on the K members at once and stays on the device: PSNR against the
clean images, the band meter and the blur/sharpness ratio, and the backtracking select.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..measure import blurriness, fbc, mlv_sharpness, psnr
from ..tasks import Task

__all__ = ["BACKTRACK_DROP_DB", "backtrack", "instruments", "measured", "psnr_or_nan"]

#: Backtracking restores the last good state when PSNR against the observation falls this far.
BACKTRACK_DROP_DB = 5.0


def psnr_or_nan(images: Tensor, cleans: Tensor | None, has_clean: Tensor) -> Tensor:
    """``(K,)`` PSNR of each member against its clean image; NaN for members without one."""
    if cleans is None:
        return torch.full((images.shape[0],), math.nan, device=images.device, dtype=images.dtype)
    values = psnr(images, cleans)
    return torch.where(has_clean, values, values.new_full((), math.nan))


def measured(out: Tensor, tasks: list[Task], references: Tensor) -> Tensor:
    """What FBC compares with the observation: the output, or ``A(output)`` (super-resolution
    compares in its low-resolution space)."""
    if out.shape == references.shape:
        return out
    return torch.cat([task.A(out[m:m + 1]) for m, task in enumerate(tasks)])


def instruments(out: Tensor, measured: Tensor, reference: Tensor, with_ratio: bool) -> Tensor:
    """``(K, 8)``: FBC bands 1–5 of ``measured`` against the observation (SPEC §5), then the
    blurriness, sharpness and ratio of ``out`` (SPEC §6; NaN where the image is too small)."""
    bands = fbc(measured, reference)
    if not with_ratio:
        return torch.cat([bands, bands.new_full((bands.shape[0], 3), math.nan)], dim=1)
    blur = blurriness(out)
    sharp = mlv_sharpness(out)
    return torch.cat([bands, torch.stack([blur, sharp, blur / sharp], dim=1)], dim=1)


def backtrack(out: Tensor, observations: Tensor, params: list[Tensor],
              optimizer: torch.optim.Optimizer, snapshot, backtracks: Tensor, enabled: Tensor):
    """SPEC §7 for every member at once, without a host decision.

    A member whose PSNR against its observation fell by more than :data:`BACKTRACK_DROP_DB`
    since the last check gets its saved weights and Adam moments back; every other member's
    state is saved. ``params`` are stacked ``(K, ...)`` tensors, or one network's own tensors
    when K = 1. Returns the new snapshot ``(tensors, psnr)``; ``backtracks`` counts restores.
    """
    state = [optimizer.state[p][key] for p in params for key in ("exp_avg", "exp_avg_sq")
             if p in optimizer.state]
    tensors = [p.data for p in params] + state
    psnr_obs = psnr(out, observations)
    if snapshot is None or len(snapshot[0]) != len(tensors):  # Adam state appears at step 1
        return [t.clone() for t in tensors], psnr_obs
    saved, saved_psnr = snapshot
    drop = (psnr_obs < saved_psnr - BACKTRACK_DROP_DB) & enabled
    for current, kept in zip(tensors, saved):
        # a 0/1 select per member: the restore is exact, never a blend
        restored = torch.where(drop.view(-1, *[1] * (current.ndim - 1)), kept, current)
        current.copy_(restored)
        kept.copy_(restored)
    backtracks += drop
    return saved, torch.where(drop, saved_psnr, psnr_obs)
