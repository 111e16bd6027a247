"""Notebook 07: trajectories. Two fits of one observation (different initialisation and code),
the squared distance between their output trajectories, and where they meet.

:func:`trajectory_pair` fits and measures; :func:`meetings` finds the meetings;
:func:`trajectory_sweep` repeats it on synthetic images with more or less fine pattern, and
:func:`divergences` says how far the trajectories part again after meeting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ...fitting import FitResult
from ...tasks import Denoise, Task
from .common import _dip_fit

__all__ = [
    "divergence_after_first_meeting",
    "divergences",
    "increases",
    "meeting_images",
    "meetings",
    "pattern_fitted",
    "trajectory_distance",
    "trajectory_pair",
    "trajectory_sweep",
]


def trajectory_distance(first: Mapping[int, Tensor], second: Mapping[int, Tensor]) -> pd.Series:
    """Mean squared distance between two output trajectories, by iteration.

    Parameters
    ----------
    first, second : mapping iteration -> Tensor (1, C, H, W)
        Outputs at the same iterations (``FitResult.snapshots``).

    Returns
    -------
    pandas.Series
        ``mean((first[t] − second[t])²)`` over pixels and channels, indexed by iteration.

    Examples
    --------
    >>> a = {0: torch.zeros(1, 1, 2, 2), 5: torch.ones(1, 1, 2, 2)}
    >>> trajectory_distance(a, {0: torch.ones(1, 1, 2, 2), 5: torch.ones(1, 1, 2, 2)}).tolist()
    [1.0, 0.0]
    """
    iterations = sorted(set(first) & set(second))
    values = [float((first[t] - second[t]).square().mean()) for t in iterations]
    return pd.Series(values, index=pd.Index(iterations, name="iteration"), name="distance")


def trajectory_pair(task: Task, seeds: tuple[int, int] = (0, 1), iterations: int = 1500,
                    every: int = 10, channels: int = 32, scales: int = 4,
                    device: str | torch.device = "cpu") -> tuple[pd.Series, list[FitResult]]:
    """Fit ``task`` twice (seeds differ in initialisation and code); their trajectory distance.

    Returns
    -------
    (pandas.Series, [FitResult, FitResult])
        :func:`trajectory_distance` every ``every`` iterations, and the two fits (their
        ``snapshots`` hold the outputs).
    """
    fits = [_dip_fit(task, seed, iterations, channels, scales, keep_every=every, device=device)
            for seed in seeds]
    return trajectory_distance(fits[0].snapshots, fits[1].snapshots), fits


def _smooth_log(distance: pd.Series, smooth: int) -> np.ndarray:
    """``log(distance)`` through a centred rolling median (Adam's one-step spikes drop out)."""
    values = np.log(np.maximum(distance.to_numpy(dtype=float), 1e-12))
    if smooth > 1:
        values = pd.Series(values).rolling(smooth, center=True, min_periods=1).median().to_numpy()
    return values


def meetings(distance: pd.Series, rise: float = 1.5, smooth: int = 3) -> list[int]:
    """Iterations where two trajectories meet: the minima of their distance between rises.

    A minimum counts when the (smoothed) distance later rises to at least ``rise`` times it
    (a meeting the trajectories leave again), or when it is the end of the run and lies at
    least ``rise`` times below the highest distance since the previous meeting (they meet
    for good). The first point of the run is never a meeting.

    Parameters
    ----------
    distance : pandas.Series
        :func:`trajectory_distance`, indexed by iteration.
    rise : float
        Factor that separates two meetings (hysteresis against wiggles).
    smooth : int
        Window of the centred rolling median of ``log(distance)``.

    Returns
    -------
    list of int
        Iterations of the meetings, in order.

    Examples
    --------
    >>> d = pd.Series([1.0, 0.2, 0.1, 0.5, 0.9, 0.3, 0.01], index=range(0, 70, 10))
    >>> meetings(d, smooth=1)
    [20, 60]
    """
    values = _smooth_log(distance, smooth)
    iterations = distance.index.to_numpy()
    threshold = math.log(rise)
    found: list[int] = []
    low_at, low = None, math.inf
    high_since = values[0]
    for i, value in enumerate(values):
        if i == 0:
            continue
        if value < low:
            low_at, low = i, value
        if low_at is not None and value - low >= threshold:
            if high_since - low >= threshold:
                found.append(int(iterations[low_at]))
            high_since, low_at, low = value, None, math.inf
        high_since = max(high_since, value)
    if low_at is not None and high_since - low >= threshold and low_at == len(values) - 1:
        found.append(int(iterations[low_at]))
    return found


def pattern_fitted(output: Tensor, target: Tensor) -> float:
    """Least-squares coefficient of the target's variation ``t − mean(t)`` in ``output − mean(t)``.

    0: the output holds only the target's mean (or something unrelated); 1: all of it.

    Examples
    --------
    >>> t = torch.rand(1, 1, 8, 8)
    >>> round(pattern_fitted(t, t), 6), round(pattern_fitted(torch.full_like(t, t.mean()), t), 6)
    (1.0, 0.0)
    """
    variation = target - target.mean()
    return float(((output - target.mean()) * variation).sum() / variation.square().sum())


def meeting_images(fits: Sequence[FitResult], distance: pd.Series, found: Sequence[int],
                   target: Tensor | None = None) -> dict[str, Tensor]:
    """Both runs' outputs at the first meeting, where they part most after it, and at the end.

    Titles carry the iteration; ``target`` (the observation) comes first when given.
    """
    images = {} if target is None else {"observation": target}
    if not found:
        return images
    after = distance[distance.index > found[0]]
    apart = int(after.idxmax()) if len(after) else found[0]
    last = int(distance.index[-1])
    for label, it in (("meeting 1", found[0]), ("apart", apart), ("end", last)):
        for run, result in zip("AB", fits):
            images[f"run {run}, {label} (it. {it})"] = result.snapshots[it]
    return images


def trajectory_sweep(fractions: Sequence[float], size: int = 48, iterations: int = 1500,
                     every: int = 10, channels: int = 32, scales: int = 4,
                     seeds: tuple[int, int] = (0, 1), line_period: int = 2,
                     device: str | torch.device = "cpu") -> pd.DataFrame:
    """Trajectory distances on :func:`~dipspec.synthetic.stripes_and_lines` images.

    For each ``pattern_fraction``, the clean synthetic image is fitted twice
    (:func:`trajectory_pair`).

    Returns
    -------
    pandas.DataFrame
        Index: iteration; one column of distances per fraction.
    """
    from ...synthetic import stripes_and_lines

    columns = {}
    for fraction in fractions:
        image = stripes_and_lines(size, pattern_fraction=fraction, line_period=line_period)
        task = Denoise(observation=image)
        columns[float(fraction)], _ = trajectory_pair(task, seeds, iterations, every, channels,
                                                      scales, device)
    return pd.DataFrame(columns)


def divergence_after_first_meeting(distance: pd.Series, smooth: int = 5) -> float:
    """How far two trajectories part again after meeting: the largest rise of their distance.

    ``max over s < t of d(t) / d(s)`` on the median-smoothed distance: 1.0 when the distance
    only shrinks (the trajectories never part again), 2.0 when it doubles after a meeting.

    Examples
    --------
    >>> d = pd.Series([1.0, 0.2, 0.1, 0.3, 0.4, 0.01], index=range(0, 60, 10))
    >>> round(divergence_after_first_meeting(d, smooth=1), 6)
    4.0
    >>> divergence_after_first_meeting(pd.Series([1.0, 0.5, 0.2]), smooth=1)
    1.0
    """
    values = _smooth_log(distance, smooth)
    lowest_so_far = np.minimum.accumulate(values)
    return float(np.exp(np.max(values - lowest_so_far)))


def divergences(sweep: pd.DataFrame, smooth: int = 5) -> pd.Series:
    """:func:`divergence_after_first_meeting` of every column of :func:`trajectory_sweep`."""
    values = {column: round(divergence_after_first_meeting(sweep[column], smooth), 3)
              for column in sweep.columns}
    series = pd.Series(values, name="divergence after the first meeting")
    series.index.name = "pattern fraction"
    return series


def increases(values: pd.Series, margin: float = 0.0, tolerance: float = 0.0) -> bool:
    """Whether ``values`` (by index) never fall by more than ``tolerance`` and end more than
    ``margin`` above their start.

    Examples
    --------
    >>> increases(pd.Series([1.0, 1.0, 3.0])), increases(pd.Series([1.0, 1.2, 0.9]))
    (True, False)
    """
    array = values.sort_index().to_numpy(dtype=float)
    return bool(np.all(np.isfinite(array)) and np.all(np.diff(array) >= -tolerance)
                and array[-1] > array[0] + margin)
