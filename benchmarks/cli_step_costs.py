"""Measure the per-step cost of ``dipspec run`` on this machine and store it for its estimate.

``dipspec run`` estimates a fit's time and memory before it starts (``dipspec/cli/estimate.py``)
from the costs measured here: seconds per step and peak memory of the paper's decoder fitted
as the CLI fits it (every iteration logged and measured), at a few padded sizes and widths,
each in a fresh process on one thread (stable while other work shares the machine, and an
upper bound for a run on more threads). The fitted scaling laws

    seconds/step = a + b·P + c·P·C²          (P: padded pixels, C: decoder width)
    bytes        = base + d·P·C + 16·parameters

are written with the raw measurements to ``dipspec/cli/step_costs.json``. Run it on an idle
machine (``python benchmarks/cli_step_costs.py``; a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "dipspec" / "cli" / "step_costs.json"
CONFIGS = [(64, 8), (64, 32), (64, 128), (128, 8), (128, 32), (128, 64), (128, 128),
           (256, 8), (256, 32), (256, 64), (384, 32)]

_CHILD = r"""
import json, sys, time, warnings
import torch
import dipspec
from dipspec.nn import Decoder
from dipspec.tasks import Denoise

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0

side, channels = int(sys.argv[1]), int(sys.argv[2])
warnings.simplefilter("ignore")
base = rss("VmRSS:")
task = Denoise(clean=torch.rand(1, 3, side, side), seed=0)
model = Decoder(out_channels=3, channels=channels, lipschitz_lambda=1.2)
params = sum(p.numel() for p in model.parameters())
times = []
def tick(info):
    times.append(time.perf_counter())
steps = 3 if side * side * channels * channels > 2e8 else 8
dipspec.fit(task, model=model, iterations=steps + 1, device="cpu", progress=False,
            callbacks=[tick])
per_step = (times[-1] - times[0]) / (len(times) - 1)
print(json.dumps({"side": side, "channels": channels, "seconds_per_step": per_step,
                  "peak_bytes": rss("VmHWM:") - base, "parameters": params}))
"""


#: One thread: stable on a shared machine, and an upper bound for more threads.
_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def measure(repeats: int = 2) -> list[dict]:
    """Each configuration ``repeats`` times in a fresh process; the fastest run counts (other
    work on the machine only ever slows a run down)."""
    rows = []
    for side, channels in CONFIGS:
        runs = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, "-c", _CHILD, str(side), str(channels)],
                                 capture_output=True, text=True, check=True, env=_ENV)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append(min(runs, key=lambda r: r["seconds_per_step"]))
        print(rows[-1], flush=True)
    return rows


def fit_laws(rows: list[dict]) -> dict:
    pixels = np.array([r["side"] ** 2 for r in rows], dtype=float)
    width = np.array([r["channels"] for r in rows], dtype=float)
    seconds = np.array([r["seconds_per_step"] for r in rows])
    # relative least squares: every configuration counts, not just the slowest
    design = np.stack([np.ones_like(pixels), pixels, pixels * width**2], axis=1)
    time_coef = np.linalg.lstsq(design / seconds[:, None], np.ones_like(seconds), rcond=None)[0]
    extra = np.array([r["peak_bytes"] - 16 * r["parameters"] for r in rows], dtype=float)
    mem_design = np.stack([np.ones_like(pixels), pixels * width], axis=1)
    mem_coef = np.linalg.lstsq(mem_design, extra, rcond=None)[0]
    return {"seconds_per_step": {"a": max(float(time_coef[0]), 0.0),
                                 "b": max(float(time_coef[1]), 0.0),
                                 "c": max(float(time_coef[2]), 0.0)},
            "bytes": {"base": max(float(mem_coef[0]), 0.0),
                      "per_pixel_channel": max(float(mem_coef[1]), 0.0),
                      "per_parameter": 16}}


def main() -> None:
    import torch

    rows = measure()
    laws = fit_laws(rows)
    OUT.write_text(json.dumps({
        "about": "per-step cost of `dipspec run` (decoder, every iteration logged and measured), "
                 "written by benchmarks/cli_step_costs.py",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   "measured on 1 thread",
        "torch": torch.__version__, "laws": laws, "measurements": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
