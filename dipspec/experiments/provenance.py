"""Provenance of a figure or table: which preset, size, iterations, device, seed and commit.

Plain Python, so the experiments record it and the plots write it beside each figure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from .fallback import fallbacks_used

__all__ = ["commit", "provenance"]

_REPO = Path(__file__).resolve().parents[2]  # the checkout: <checkout>/dipspec/experiments/


def commit() -> str:
    """The checkout's short commit hash, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_REPO,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(preset, results=None, **extra) -> dict:
    """Preset, image size, iterations, device, seed, commit and wall time of a figure's runs,
    and ``image_fallbacks`` ({paper image: embedded stand-in}) when the quick preset replaced
    an unreachable paper image in this process (:mod:`dipspec.experiments.fallback`)."""
    results = list(results.values()) if isinstance(results, Mapping) else list(results or [])
    info = {"preset": getattr(preset, "name", str(preset)), "commit": commit()}
    if results:
        first = results[0]
        info.update(image_size=list(first.output.shape[-2:]),
                    iterations=int(max(r.history["iteration"].max() + 1 for r in results)),
                    device=first.device, seed=first.seed,
                    wall_time_s=round(sum(r.wall_time for r in results), 1))
    if fallbacks_used():
        info["image_fallbacks"] = fallbacks_used()
    info.update(extra)
    return info
