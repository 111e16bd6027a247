"""What a fit will cost, before it starts: time from per-step costs measured once on a CPU
(``step_costs.json``, written by ``benchmarks/cli_step_costs.py``), memory from the network's
parameters, its activations and the history.

    seconds/step = a + b·P + c·P·C²          P: padded pixels, C: decoder width
    bytes        = base + d·P·C + 16·parameters + iterations·(200 + 16·columns)

The 16 bytes a parameter are its weight, gradient and Adam's two moments; a history row costs
its float32 readings on the device, the float64 frame and Python's bookkeeping per row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Estimate", "available_memory", "estimate", "format_bytes", "format_seconds"]

#: Above this estimate a run warns (and says how to make it faster).
WARN_SECONDS = 30 * 60
_HISTORY_COLUMNS = 11
_ROW_BYTES = 200 + 16 * _HISTORY_COLUMNS


@lru_cache(maxsize=1)
def _laws() -> dict:
    return json.loads((Path(__file__).with_name("step_costs.json")).read_text())["laws"]


@dataclass(frozen=True)
class Estimate:
    """The cost of one fit: ``seconds`` (None off the CPU) and peak ``bytes``, with the part of
    the bytes the history takes (it grows with the iterations)."""

    seconds: float | None
    bytes: int
    history_bytes: int

    def describe(self) -> str:
        time = "" if self.seconds is None else (
            f"{'' if self.seconds < 1 else 'about '}{format_seconds(self.seconds)} and ")
        return f"{time}{format_bytes(self.bytes)} of memory"


def estimate(pixels: int, channels: int, parameters: int, iterations: int,
             on_cpu: bool = True) -> Estimate:
    """The cost of a fit of a decoder of width ``channels`` (``parameters`` weights) on
    ``pixels`` padded pixels for ``iterations`` steps.

    Examples
    --------
    >>> small = estimate(64 * 64, 32, 111_459, 100)
    >>> large = estimate(512 * 512, 128, 1_662_339, 10_000)
    >>> small.seconds < large.seconds and small.bytes < large.bytes
    True
    """
    laws = _laws()
    step = laws["seconds_per_step"]
    seconds = (step["a"] + step["b"] * pixels + step["c"] * pixels * channels**2) * iterations
    memory = laws["bytes"]
    history = iterations * _ROW_BYTES
    total = (memory["base"] + memory["per_pixel_channel"] * pixels * channels
             + memory["per_parameter"] * parameters + history)
    return Estimate(seconds if on_cpu else None, int(total), int(history))


def available_memory(device_type: str = "cpu") -> int | None:
    """Bytes the fit may use: ``MemAvailable`` (Linux), free pages elsewhere, or the GPU's free
    memory; ``None`` when unknown. ``$DIPSPEC_MEMORY_AVAILABLE`` overrides (bytes)."""
    if os.environ.get("DIPSPEC_MEMORY_AVAILABLE"):
        return int(float(os.environ["DIPSPEC_MEMORY_AVAILABLE"]))
    if device_type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_seconds(seconds: float) -> str:
    """``under 1 s``, ``42 s``, ``3 min``, ``2.5 h``, ``3 days``."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def format_bytes(count: float) -> str:
    """``350 MB``, ``2.4 GB``."""
    if count < 1e9:
        return f"{count / 1e6:.0f} MB"
    return f"{count / 1e9:.1f} GB"
