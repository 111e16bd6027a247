"""What the engine measures each logged iteration, and its backtracking (SPEC §5–§7).

Every function here works on the K members at once and stays on the device: PSNR against the
clean images, the band meter and the blur/sharpness ratio, and the backtracking select.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..measure import psnr
from ..measure.blur import _blurriness, _mlv_sharpness
from ..measure.fbc import _band_weights, _fbc_against, _reference_denominator
from ..measure.grey import _to_grey
from ..tasks import Task

__all__ = ["BACKTRACK_DROP_DB", "Instruments", "backtrack", "measured", "psnr_or_nan"]

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


class Instruments:
    """The meters of K members against fixed observations (SPEC §5–§6), read each iteration.

    Built once per fit: it keeps what never changes (the observations' spectra ``|F(y)| +
    1e-8``, the band matrix), so a reading costs one ``rfft2`` of the output, one grey
    conversion shared by the blur and sharpness meters, and no input checks. The numbers are
    those of :func:`~dipspec.measure.fbc`, :func:`~dipspec.measure.blurriness` and
    :func:`~dipspec.measure.mlv_sharpness`, bit for bit.
    """

    def __init__(self, references: Tensor, with_ratio: bool) -> None:
        _, _, height, width = references.shape
        self.denominator = _reference_denominator(_to_grey(references))
        self.band_weights = _band_weights(height, width, 5, references.device, references.dtype)
        self.with_ratio = with_ratio

    def __call__(self, out: Tensor, measured: Tensor) -> Tensor:
        """``(K, 8)``: FBC bands 1–5 of ``measured`` (the output, or ``A(output)``) against the
        observation, then the blurriness, sharpness and ratio of ``out`` (NaN where the image
        is too small for them)."""
        grey = _to_grey(out)
        bands = _fbc_against(grey if measured is out else _to_grey(measured), self.denominator,
                             self.band_weights)
        if not self.with_ratio:
            return torch.cat([bands, bands.new_full((bands.shape[0], 3), math.nan)], dim=1)
        blur, sharp = _blurriness(grey), _mlv_sharpness(grey)
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
    if psnr_obs.device.type == "cpu" and not bool(drop.any()):
        # the usual case, and on a CPU reading the flag costs nothing: save in one call
        torch._foreach_copy_(saved, tensors)
        return saved, psnr_obs
    for current, kept in zip(tensors, saved):
        # a 0/1 select per member: the restore is exact, never a blend
        restored = torch.where(drop.view(-1, *[1] * (current.ndim - 1)), kept, current)
        current.copy_(restored)
        kept.copy_(restored)
    backtracks += drop
    return saved, torch.where(drop, saved_psnr, psnr_obs)
