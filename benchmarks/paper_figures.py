"""Shi et al.'s figures 01, 03, 04 and 05 at the paper's scale, one command each, no notebook.

The GPU scripts (``gpu_check.sh``, issue 18; ``paper_scale.sh``, issue 19) run the figures
through this entry point because the device machine has no papermill or Jupyter kernel. It does
what the notebooks' code cells do — :func:`dipspec.experiments.configure`, the members of one
figure fitted side by side with :func:`dipspec.fit_many`, :mod:`dipspec.plots` — at the
``paper`` preset (full-size images, 128 channels, the paper's iterations)::

    PYTHONPATH=. python benchmarks/paper_figures.py lipschitz_control --out OUT --device cuda
    PYTHONPATH=. python benchmarks/paper_figures.py automatic_stop --dry-run --out OUT

and writes ``OUT/<figure>.png``, ``OUT/<figure>.json`` (the provenance: settings, precision
and TF32 flags, the per-run summary, the findings the notebook prints, SPEC §9's read-outs where
it gives them, and ``interrupted`` when the fit was stopped early) and
``OUT/<figure>_histories.csv`` (every run's history, one row per iteration, a column ``run``).

``--dry-run`` runs the same steps at 64², 8 channels and 20 iterations on the CPU. A paper image
that cannot be read (no ``$DIPSPEC_DATA_MIRROR``, no download on the device) is replaced by its
embedded stand-in, with one printed line, and recorded as ``image_fallbacks``: those numbers are
not the paper's. ``--budget-s`` (and SIGTERM, as ``timeout`` sends it) stops the fits at the end
of an iteration; the figure and histories are then written from what exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import torch

from dipspec import data, experiments, plots, tasks
from dipspec.experiments import fallback
from dipspec.fitting import FitInterrupted, request_interrupt
from dipspec.presets import PAPER

#: The figures, by name (``dipspec.experiments.FIGURES``' keys) → the notebook that draws them.
FIGURES = {"fbc_noise": "01", "lipschitz_control": "03", "gaussian_control": "04",
           "automatic_stop": "05"}
#: The dry run: the same steps, tiny (64² is the smallest size with a blur/sharpness ratio).
DRY = {"image_size": 64, "channels": 8, "iterations": 20, "metrics_every": 2}
#: The stop rule of figure 05 (notebook 05's window n and ε; SPEC §6).
STOP_WINDOW, STOP_EPS = 100, 0.01
NOISE_SIGMA = 25 / 255

#: What SPEC §9 reads off the paper's figures (±0.5 dB, ±300 iterations), to print beside ours.
PAPER_READOUTS = {
    "lipschitz_control": {
        "λ = 1": "≈26 dB flat; FBC at 10 000 ≈ (0.80, 0.51, 0.28, 0.15, 0.09)",
        "λ = 2": "≈29 dB by it. 1000 → ≈30 at 10 000, no decay; FBC ≈ (0.95, 0.69, 0.40, 0.21, "
                 "0.13)",
        "λ = 3": "peaks ≈29.3 near it. 500 → ≈23.5; FBC ≈ (0.96, 0.93, 0.86, 0.75, 0.46)",
    },
    "gaussian_control": {
        "σ = 0": "≈29 dB near it. 2000, then ≈28.7",
        "σ = 0.5": "≈29.9 by it. 2500, holds",
        "σ = 1": "slower, ≈29.6 at 10 000",
    },
    "automatic_stop": {
        "Peppers": "stop near it. 6900 at ≈31.5 dB (= the PSNR at 10 000)",
        "F16": "stop near it. 7500 at ≈33.5 dB",
        "Lena": "stop near it. 5600 at ≈32.7 dB",
    },
    "fbc_noise": {
        "each image": "PSNR 11 → peak ≈30 dB near it. 330 → ≈22 dB at 5000",
    },
}


def configure(figure: str, args: argparse.Namespace) -> experiments.Setup:
    """The notebook's setup at the paper preset (or the dry run's tiny overrides)."""
    preset = PAPER.with_(precision=args.precision)
    sizes = DRY if args.dry_run else {}
    return experiments.configure(
        figure, preset, images=args.images, seed=args.seed, device=args.device,
        image_size=args.image_size or sizes.get("image_size"),
        channels=args.channels or sizes.get("channels"),
        iterations=args.iterations or sizes.get("iterations"),
        metrics_every=args.metrics_every or sizes.get("metrics_every"))


def _relpath(name: str) -> str | None:
    """The denoising image ``name`` names (as ``experiments.load`` reads it)."""
    matches = [p for p in data.paper_images("denoising")
               if name.lower() in p.rsplit("/", 1)[-1].lower()]
    return matches[0] if matches else None


def load_clean(name: str, setup: experiments.Setup, fallbacks: dict) -> torch.Tensor:
    """The clean image ``name`` at the setup's size; its embedded stand-in if unreadable."""
    try:
        return experiments.load(name, setup.image_size, preset=setup.preset)
    except FileNotFoundError as err:
        relpath = _relpath(name)
        if relpath is None:
            raise
        embedded, shape, grey = fallback.stand_in(relpath)
        reason = str(err).split(";")[0]
        print(f"paper image {name} unavailable ({reason}): using the embedded {embedded!r} "
              "instead; these numbers are NOT the paper's (recorded as image_fallbacks)",
              flush=True)
        fallbacks[relpath] = embedded
        return data.load_image(embedded, gray=grey, size=setup.image_size or shape)


def members(figure: str, setup: experiments.Setup, fallbacks: dict) -> tuple[list, list, list]:
    """``(labels, tasks, models)`` of the figure's runs, as the notebook's sweep builds them."""
    denoise = {name: tasks.Denoise(NOISE_SIGMA, clean=load_clean(name, setup, fallbacks),
                                   seed=setup.seed) for name in setup.images}
    first = next(iter(denoise.values()))
    if figure == "lipschitz_control":  # experiments.sweep_lambda
        chosen = {f"λ = {lam:g}": lam for lam in setup.lambdas} | {"plain DIP": None}
        models = [experiments.make_model("decoder", setup, first.channels, lipschitz_lambda=lam)
                  for lam in chosen.values()]
        return list(chosen), [first] * len(models), models
    if figure == "gaussian_control":  # experiments.sweep_sigma, λ = the preset's
        lam = experiments.sigma_sweep_lambda(setup, "preset")
        models = [experiments.make_model("decoder", setup, first.channels, lipschitz_lambda=lam,
                                         upsample="gaussian", gaussian_sigma=sigma)
                  for sigma in setup.sigmas]
        return [f"σ = {s:g}" for s in setup.sigmas], [first] * len(models), models
    # experiments.plain_dip (figure 01) and experiments.controlled (figure 05): one per image
    lam = None if figure == "fbc_noise" else setup.lipschitz_lambda
    models = [experiments.make_model("decoder", setup, task.channels, lipschitz_lambda=lam)
              for task in denoise.values()]
    return list(denoise), list(denoise.values()), models


def fit_all(setup: experiments.Setup, task_list: list, models: list,
            budget_s: float | None) -> tuple[list, dict | None]:
    """Fit side by side; stop at the end of an iteration on SIGTERM or after ``budget_s``."""
    previous = signal.signal(signal.SIGTERM, lambda *_: request_interrupt("SIGTERM"))
    timer = None
    if budget_s:
        timer = threading.Timer(budget_s, request_interrupt, args=("budget",))
        timer.daemon = True
        timer.start()
    try:
        return experiments.fit_together(task_list, models, setup, progress=False), None
    except FitInterrupted as stop:
        if len(stop.results) != len(models):  # none done, or one batch of several sizes
            raise
        print(f"fits stopped ({stop.reason}) after iteration {stop.iteration} of "
              f"{setup.iterations}: writing what exists", flush=True)
        return stop.results, {"reason": stop.reason, "last_iteration": stop.iteration,
                              "planned_iterations": setup.iterations}
    finally:
        if timer is not None:
            timer.cancel()
        signal.signal(signal.SIGTERM, previous)


def calibrate(figure: str, args: argparse.Namespace, steps: tuple[int, int] = (10, 60)) -> dict:
    """Seconds per iteration of the figure's batched fit, from two short fits (``steps``).

    A first short fit warms up (the device's start, kernel selection) and is not counted. The
    difference of the next two wall times over the difference of their iterations is the
    per-iteration cost without the fixed part (building, instruments); ``fixed_s`` is the rest.
    """
    setup = configure(figure, args)
    _apply_tf32(args.tf32)
    labels, task_list, _ = members(figure, setup, {})
    walls = []
    for count in (steps[0], *steps):
        short = dataclasses.replace(setup, iterations=count)
        _, _, models = members(figure, short, {})
        started = time.perf_counter()
        experiments.fit_together(task_list, models, short, progress=False)
        if setup.device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - started)
    walls = walls[1:]  # the warm-up is not counted
    per_step = max((walls[1] - walls[0]) / (steps[1] - steps[0]), 1e-6)
    return {"figure": figure, "members": len(labels), "iterations": setup.iterations,
            "per_step_s": per_step, "fixed_s": max(walls[0] - steps[0] * per_step, 0.0),
            "calibration_steps": list(steps), "calibration_walls_s": walls}


def _apply_tf32(mode: str) -> dict:
    """Set (``on`` / ``off``) or keep (``default``) PyTorch's TF32 flags; return them."""
    if mode != "default":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "on"
    return {"mode": mode, "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32}


def _table(frame: pd.DataFrame) -> dict:
    return json.loads(frame.to_json(orient="index"))  # plain JSON types, NaN → null


def _figure(figure: str, results: dict, setup: experiments.Setup):
    if figure == "automatic_stop":
        stops = experiments.stop_iterations(results, STOP_WINDOW, STOP_EPS)
        return plots.figure_stop(results, stops=stops)
    if figure == "gaussian_control":
        return plots.figure_bands(results, smooth=setup.smooth, title="FBC ({label})")
    return plots.figure_bands(results, smooth=setup.smooth, mark_peak=figure == "fbc_noise")


def _findings(figure: str, results: dict, setup: experiments.Setup) -> dict:
    if figure == "lipschitz_control":
        return experiments.findings_lipschitz(results, setup.lambdas, setup.smooth)
    if figure == "gaussian_control":
        return experiments.findings_gaussian(results, setup.sigmas, setup.smooth)
    if figure == "automatic_stop":
        return experiments.findings_stopping(results, setup.smooth, STOP_WINDOW, STOP_EPS)
    return experiments.findings_spectral_bias(results, setup.smooth)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} torch threads"


def _settings(figure: str, results: dict, setup: experiments.Setup) -> dict:
    """What the notebook records beside its figure (its λ / σ), and figure 05's stop table."""
    if figure == "lipschitz_control":
        return {"lambdas": list(setup.lambdas)}
    if figure == "gaussian_control":
        return {"sigmas": list(setup.sigmas),
                "lipschitz_lambda": experiments.sigma_sweep_lambda(setup, "preset")}
    if figure == "automatic_stop":
        table = experiments.stop_table(results, setup.smooth, STOP_WINDOW, STOP_EPS)
        return {"lipschitz_lambda": setup.lipschitz_lambda, "stop_window": STOP_WINDOW,
                "stop_eps": STOP_EPS, "stop_table": _table(table)}
    return {}


def write(figure: str, results: dict, setup: experiments.Setup, out: Path, info: dict) -> dict:
    """The figure, its provenance JSON and the histories CSV; return the provenance."""
    summary = experiments.summary(results, setup.smooth)
    prov = setup.provenance(results, **_settings(figure, results, setup), **info,
                            summary=_table(summary),
                            findings=_findings(figure, results, setup),
                            paper_readouts=PAPER_READOUTS.get(figure, {}))
    if prov.get("commit") == "unknown" and os.environ.get("DIPSPEC_COMMIT"):
        prov["commit"] = os.environ["DIPSPEC_COMMIT"]  # a copy without .git (the device)
    plots.save_figure(_figure(figure, results, setup), figure, prov, folder=out)
    histories = pd.concat([r.history.assign(run=label) for label, r in results.items()])
    histories.to_csv(out / f"{figure}_histories.csv", index=False)
    return prov


def run(figure: str, args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup = configure(figure, args)
    tf32 = _apply_tf32(args.tf32)
    fallbacks: dict = {}
    labels, task_list, models = members(figure, setup, fallbacks)
    size = tuple(task_list[0].output_size)
    print(f"figure {FIGURES[figure]} ({figure}): {len(labels)} runs ({', '.join(labels)}) "
          f"batched with fit_many, {size[0]}x{size[1]}, {setup.preset.channels} channels, "
          f"{setup.iterations} iterations, metrics every {setup.metrics_every}, device "
          f"{setup.device}, precision {setup.preset.precision}, TF32 {tf32}", flush=True)
    started = time.perf_counter()
    fits, interrupted = fit_all(setup, task_list, models, args.budget_s)
    wall = time.perf_counter() - started
    results = dict(zip(labels, fits, strict=True))
    done = int(max(r.history["iteration"].max() for r in fits)) + 1
    info = {"entry_point": "benchmarks/paper_figures.py", "argv": sys.argv[1:],
            "dry_run": args.dry_run, "notebook": f"notebooks/{FIGURES[figure]}_*.ipynb",
            "planned_iterations": setup.iterations, "precision": setup.preset.precision,
            "tf32": tf32, "device_name": _device_name(setup.device),
            "torch": torch.__version__, "python": platform.python_version(),
            "fit_wall_s": round(wall, 1), "per_step_s": wall / max(done, 1),
            "interrupted": interrupted, "image_fallbacks": fallbacks or None}
    prov = write(figure, results, setup, out, info)
    print(pd.DataFrame.from_dict(prov["summary"], orient="index").iloc[:, :4].to_string())
    experiments.report(prov["findings"])
    print(f"wrote {out / figure}.png, .json and {figure}_histories.csv ({done} iterations in "
          f"{wall:.0f} s)", flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("figure", choices=list(FIGURES))
    parse.add_argument("--out", required=True, help="folder for the figure, JSON and CSV")
    parse.add_argument("--dry-run", action="store_true",
                       help=f"tiny sizes on the CPU: {DRY}")
    parse.add_argument("--device", default=None, help="auto, cpu or cuda (dry run: cpu)")
    parse.add_argument("--images", nargs="+", default=None, help="default: the figure's")
    parse.add_argument("--image-size", type=int, default=None, help="default: full size")
    parse.add_argument("--channels", type=int, default=None, help="default: 128")
    parse.add_argument("--iterations", type=int, default=None, help="default: the paper's")
    parse.add_argument("--metrics-every", type=int, default=None, help="default: 10")
    parse.add_argument("--seed", type=int, default=0)
    parse.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parse.add_argument("--tf32", choices=("default", "on", "off"), default="default",
                       help="PyTorch's TF32 flags: keep its defaults (cuDNN convolutions in "
                            "TF32, matmuls not), or set both on / off")
    parse.add_argument("--budget-s", type=float, default=None,
                       help="stop the fits after this many seconds and write what exists")
    parse.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "auto")
    if args.threads:
        torch.set_num_threads(args.threads)
    return run(args.figure, args)


if __name__ == "__main__":
    sys.exit(main())
