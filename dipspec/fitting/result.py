"""What a fit returns: :class:`FitResult` and the names of the history's columns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from torch import Tensor, nn

from ..tasks import Task

__all__ = ["FBC_COLUMNS", "METRIC_COLUMNS", "FitResult", "log_spaced_iterations"]

FBC_COLUMNS = tuple(f"fbc_{k}" for k in range(1, 6))
METRIC_COLUMNS = (*FBC_COLUMNS, "blurriness", "sharpness", "ratio")


def log_spaced_iterations(iterations: int, count: int = 40) -> list[int]:
    """About ``count`` iterations of a run of ``iterations``, log-spaced: 0, the last, and dense
    early, where the low frequencies arrive. For ``fit(..., keep_outputs=...)``: the outputs
    the iteration scrubber shows, without keeping every iterate.

    Examples
    --------
    >>> log_spaced_iterations(3000, 8)
    [0, 1, 3, 10, 31, 97, 304, 956, 2999]
    """
    if iterations < 1 or count < 1:
        raise ValueError(f"iterations and count must be >= 1, got {iterations} and {count}")
    last = iterations - 1
    if last == 0:
        return [0]
    kept = {0, last}
    for k in range(count):
        kept.add(round(last ** (k / max(count - 1, 1))))
    return sorted(kept)


@dataclass
class FitResult:
    """What a fit returns.

    Attributes
    ----------
    output : Tensor, (1, C, H, W)
        The restoration at the last iteration, or where the stop rule stopped (for ES-WMV /
        ES-EMV the output of the detected iteration, ``stop_iteration``, kept by the rule while
        it waited its patience), on the CPU; for detail enhancement, the enhanced image
        (``task.finalize``).
    best : Tensor or None
        The best-PSNR output (the oracle) when a clean image is known.
    history : pandas.DataFrame
        One row per logged iteration: ``iteration``, ``loss``, ``psnr`` (NaN without a clean
        image), ``psnr_avg`` with output averaging, and with ``metrics_every > 0`` the columns
        ``fbc_1 … fbc_5`` (band 1 lowest), ``blurriness``, ``sharpness``, ``ratio``.
    stop_iteration : int or None
        Without a stop rule: where the paper's rule (SPEC §6, ``stop_window``, ``stop_eps``)
        fires on the logged ratios, though the fit was not ended there. With one
        (``stop_rule=`` or ``auto_stop=True``): the iteration the rule detected (for ES-WMV /
        ES-EMV the variance minimum, ``patience`` iterations before the fit ended; for the
        oracle the best-PSNR iteration), None if it never fired.
    stop_rule : str or None
        The name of the fit's stop rule (``"paper"``, ``"es-wmv"``, …), None without one.
    stopped_at : int or None
        The iteration at which that rule fired and ended the fit (``output`` is from there),
        None if it never fired.
    snapshots : dict
        Outputs at the iterations requested with ``keep_outputs``.
    interrupted : bool
        The fit was stopped by Ctrl-C or SIGTERM; everything above ends at its last iteration.
    diverged : bool
        The loss became non-finite; the history ends where that was found, ``best`` is kept.
    """

    output: Tensor
    best: Tensor | None
    history: pd.DataFrame
    stop_iteration: int | None
    task: Task
    model: nn.Module
    snapshots: dict[int, Tensor] = field(default_factory=dict)
    output_avg: Tensor | None = None
    backtracks: int = 0
    wall_time: float = 0.0
    device: str = "cpu"
    seed: int = 0
    interrupted: bool = False
    diverged: bool = False
    stop_rule: str | None = None
    stopped_at: int | None = None

    def curve(self, column: str = "psnr", smooth: int = 1) -> pd.Series:
        """``column`` by iteration, smoothed by a centred rolling mean over ``smooth`` rows."""
        series = self.history.set_index("iteration")[column]
        if smooth > 1:
            series = series.rolling(smooth, center=True, min_periods=1).mean()
        return series

    def peak(self, column: str = "psnr", smooth: int = 1) -> tuple[int, float]:
        """``(iteration, value)`` of the maximum of the (smoothed) curve."""
        series = self.curve(column, smooth)
        return int(series.idxmax()), float(series.max())

    def peak_drop_db(self, smooth: int = 1) -> float:
        """How far the final (smoothed) PSNR lies below its peak, in dB."""
        series = self.curve("psnr", smooth)
        return float(series.max() - series.iloc[-1])

    def first_reach(self, column: str, value: float) -> float:
        """First logged iteration at which ``column >= value`` (``inf`` if never)."""
        reached = self.history[self.history[column] >= value]
        return float(reached["iteration"].iloc[0]) if len(reached) else math.inf

    def at(self, iteration: int) -> pd.Series:
        """The logged row nearest to ``iteration``."""
        idx = (self.history["iteration"] - iteration).abs().idxmin()
        return self.history.loc[idx]
