"""Reading fit results: PSNR peaks, FBC bands at an iteration, summary and stop tables.

Peaks are judged on a smoothed PSNR curve (a centred rolling mean over ``smooth`` iterations),
because single-iteration PSNR is spiky; FBC values "at" an iteration are the smoothed bands at
the nearest measured iteration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..fitting import FBC_COLUMNS, FitResult
from ..measure import first_stop_iteration, psnr
from .setup import degraded_view

__all__ = [
    "bands_at",
    "method",
    "peak",
    "psnr_table",
    "rise_iteration",
    "stop_at",
    "stop_iterations",
    "stop_table",
    "summary",
]


def method(runs: Mapping[str, Mapping[str, FitResult]], name: str) -> dict[str, FitResult]:
    """One method's results out of ``{image: {method: result}}`` (e.g. ``"plain DIP"``)."""
    return {image: methods[name] for image, methods in runs.items()}


def _rows(result: FitResult, window: int) -> int:
    """A smoothing window in iterations as a number of history rows."""
    iterations = result.history["iteration"].to_numpy()
    step = float(np.median(np.diff(iterations))) if len(iterations) > 1 else 1.0
    return max(1, round(window / max(step, 1.0)))


def peak(result: FitResult, smooth: int) -> tuple[int, float]:
    """``(iteration, dB)`` of the peak of the PSNR curve smoothed over ``smooth`` iterations."""
    return result.peak("psnr", _rows(result, smooth))


def _final(result: FitResult, smooth: int) -> float:
    return float(result.curve("psnr", _rows(result, smooth)).iloc[-1])


def _psnr_at(result: FitResult, iteration: int, smooth: int) -> float:
    curve = result.curve("psnr", _rows(result, smooth))
    return float(curve.iloc[int(np.abs(curve.index.to_numpy() - iteration).argmin())])


def rise_iteration(result: FitResult, smooth: int, within: float = 1.0) -> int:
    """First iteration at which the smoothed PSNR comes within ``within`` dB of its peak.

    A convergence time that, unlike the peak's iteration, stays put when a curve is still
    creeping up at the end of the run.
    """
    curve = result.curve("psnr", _rows(result, smooth))
    reached = (curve >= curve.max() - within).to_numpy()
    return int(curve.index[int(reached.argmax())])


def bands_at(result: FitResult, iteration: int, smooth: int = 1) -> pd.Series:
    """The five FBC bands at the measured iteration nearest to ``iteration``, each smoothed by a
    centred rolling mean over ``smooth`` iterations."""
    history = result.history
    if "fbc_1" not in history or history["fbc_1"].isna().all():
        raise ValueError("this fit measured no FBC; fit it with metrics_every >= 1")
    measured = history.dropna(subset=["fbc_1"]).set_index("iteration")[list(FBC_COLUMNS)]
    step = float(np.median(np.diff(measured.index))) if len(measured) > 1 else 1.0
    rows = max(1, round(smooth / max(step, 1.0)))
    smoothed = measured.rolling(rows, center=True, min_periods=1).mean()
    return smoothed.iloc[int(np.abs(smoothed.index.to_numpy() - iteration).argmin())]


def _last_iteration(result: FitResult) -> int:
    return int(result.history["iteration"].iloc[-1])


def summary(results: Mapping[str, FitResult], smooth: int) -> pd.DataFrame:
    """Per run: peak iteration and PSNR, final PSNR, drop, and the FBC bands at the peak and end.

    PSNR values are read from the curve smoothed over ``smooth`` iterations.
    """
    rows = {}
    for label, result in results.items():
        peak_it, peak_db = peak(result, smooth)
        final = _final(result, smooth)
        row = {"peak iteration": peak_it, "peak PSNR": peak_db, "final PSNR": final,
               "drop (dB)": peak_db - final}
        if "fbc_1" in result.history:
            at_peak = bands_at(result, peak_it, smooth)
            at_end = bands_at(result, _last_iteration(result), smooth)
            row.update({f"{col} @peak": float(at_peak[col]) for col in FBC_COLUMNS})
            row.update({f"{col} @end": float(at_end[col]) for col in FBC_COLUMNS})
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(3)


def psnr_table(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """PSNR of the degraded input, the restoration at the end and the oracle best, per task."""
    rows = {}
    for label, result in results.items():
        task = result.task
        if task.clean is None or task.name == "enhance":
            continue
        clean = task.clean.cpu()
        rows[label] = {
            "degraded": float(psnr(degraded_view(task).cpu(), clean)[0]),
            "restored": float(psnr(result.output, clean)[0]),
            "best (oracle)": float(psnr(result.best, clean)[0]),
            "iterations": _last_iteration(result) + 1,
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def stop_at(result: FitResult, window: int = 100, eps: float = 0.01) -> int | None:
    """Where the stopping rule (SPEC §6) fires on a fit's logged ratios for window n and ε."""
    measured = result.history.dropna(subset=["ratio"])
    # copies: pandas hands out read-only arrays, which torch.as_tensor warns about
    return first_stop_iteration(np.array(measured["ratio"]), window=window, eps=eps,
                                         iterations=np.array(measured["iteration"]))


def stop_iterations(results: Mapping[str, FitResult], window: int = 100,
                    eps: float = 0.01) -> dict[str, int | None]:
    """:func:`stop_at` of every run, by label (``None`` where the rule never fires)."""
    return {label: stop_at(result, window, eps) for label, result in results.items()}


def stop_table(results: Mapping[str, FitResult], smooth: int, window: int = 100,
               eps: float = 0.01) -> pd.DataFrame:
    """The automatic stop against running to the end, per run.

    Columns: the stop iteration, the iterations run, the iterations saved by stopping, the
    (smoothed) PSNR at the stop and at the end, the PSNR lost by stopping (end − stop; negative
    means stopping was better) and the oracle's peak PSNR.
    """
    rows = {}
    for label, result in results.items():
        stop = stop_at(result, window, eps)
        end = _last_iteration(result)
        at_stop = math.nan if stop is None else _psnr_at(result, stop, smooth)
        at_end = _final(result, smooth)
        rows[label] = {
            "stop iteration": stop if stop is not None else pd.NA,
            "iterations": end + 1,
            "iterations saved": (end - stop) if stop is not None else 0,
            "PSNR at stop": at_stop,
            "PSNR at end": at_end,
            "PSNR lost (dB)": at_end - at_stop,
            "peak PSNR": peak(result, smooth)[1],
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)
