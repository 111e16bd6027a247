"""The four core figures at the paper's width, drawn from recorded fits (issue 14).

``fbc_noise`` (notebook 01), ``lipschitz_control`` (03), ``gaussian_control`` (04) and
``automatic_stop`` (05) at the ``wide`` preset: 128 × 128 images, the 128-channel decoder,
5000 iterations, σ = 25, seed 0, the paper's λ = 1, 2, 3 and σ = 0, 0.5, 1 (at λ = 2, the λ of
the paper's Gaussian figure), the stop rule of SPEC §6. A fit at this scale costs about an hour
of a 2-core CPU, so no fit runs twice: the λ fits are the resolution ladder's 128² rungs
(:mod:`dipspec.experiments.ladder`, ``results/ladder``), and only the σ sweep is fitted here,
journalled and checkpointed like the ladder (the same command continues it). The findings of
the quick notebooks are evaluated unchanged on the recorded trajectories
(:class:`~dipspec.experiments.trajectories.RecordedFit`)::

    python -m dipspec.experiments.wide                  # fit the σ sweep if missing, report
    python -m dipspec.experiments.wide --report-only    # report what the recorded fits allow

The findings, with the numbers behind them, go to ``results/wide.{md,json}``; notebook
``14_wide_scale.ipynb`` draws the figures into ``figures/wide/`` (each with its provenance
JSON) with the quick notebooks' own plotting. A figure whose fits have not finished is left out
and named in the report.

The ladder's fits used the contiguous memory order and the σ sweep the wide preset's
channels-last order: the same arithmetic up to float rounding.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .. import data, tasks
from ..fitting import FitInterrupted
from ..presets import resolve
from .chakrabarty.tables import FitJournal, results_path
from .findings import (
    findings_gaussian,
    findings_lipschitz,
    findings_spectral_bias,
    findings_stopping,
)
from .ladder import LADDER_IMAGES, ladder_key
from .provenance import commit
from .readouts import stop_table, summary
from .setup import load
from .trajectories import (
    CHECKPOINT_EVERY,
    RecordedFit,
    markdown_table,
    record_fits,
    recorded,
    write_texts,
)

__all__ = ["STOP_LAMBDA", "WIDE_IMAGE", "figure_provenance", "findings",
           "recorded_figures", "run_sigma_sweep", "sigma_key", "smoothing", "write_report"]

#: The image of the λ and σ figures (the paper's Peppers, as the quick notebooks).
WIDE_IMAGE = "Peppers"
#: The λ of the stop figure: the paper's "right" λ (its Figure for the stop uses its
#: controlled decoder); the ladder has the fit on every image.
STOP_LAMBDA = 2.0
COMMAND = "python -m dipspec.experiments.wide"


def sigma_key(sigma: float, image: str = WIDE_IMAGE, seed: int = 0, device: str = "cpu") -> dict:
    """The journal key of one fit of the σ sweep at the wide preset."""
    wide = resolve("wide")
    return {"image": image, "size": wide.image_size, "width": wide.channels,
            "lambda": f"{wide.gaussian_lambda:g}", "upsample": "gaussian",
            "gaussian_sigma": float(sigma), "seed": seed, "iterations": wide.iterations,
            "noise_sigma": 25, "precision": wide.precision,
            "channels_last": wide.channels_last, "device": device}


def run_sigma_sweep(out: str | Path = "results/wide", image: str = WIDE_IMAGE, seed: int = 0,
                    device: str = "auto", progress: bool = True,
                    iterations: int | None = None) -> Path:
    """Fit the σ sweep (Gaussian upsampling, σ = 0, 0.5, 1, λ = 2) at the wide preset, the
    missing fits batched and checkpointed every 250 iterations; return the journal's path.

    ``iterations`` overrides the preset's 5000 (for tests; it is part of the journal key).
    """
    wide = resolve("wide")
    if iterations is not None:
        wide = wide.with_(iterations=iterations)
    journal = FitJournal(Path(out) / "wide.journal.jsonl")
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)
    todo, options, names = [], [], []
    for sigma in wide.gaussian_sigmas:
        key = {**sigma_key(sigma, image, seed, device.type), "iterations": wide.iterations}
        if journal.get(key) is None:
            todo.append((wide.gaussian_lambda, key))
            options.append({"upsample": "gaussian", "gaussian_sigma": sigma})
            names.append(f"sigma{sigma:g}")
    if todo:
        task = tasks.Denoise(25 / 255, clean=load(image, wide.image_size), seed=seed)
        record_fits(out, journal, task, todo, seed, wide, wide.iterations, device, progress,
                    prefix=f"{image}_{wide.image_size}_s{seed}_gaussian",
                    checkpoint_every=CHECKPOINT_EVERY, model_options=options, names=names)
    return journal.path


def recorded_figures(ladder: str | Path | None = None, out: str | Path | None = None,
                     device: str = "cpu", iterations: int | None = None
                     ) -> tuple[dict[str, dict[str, RecordedFit]], dict[str, list[str]]]:
    """The recorded fits of each figure, by figure and run label, and for each figure that
    cannot be drawn yet the fits it still lacks.

    ``fbc_noise`` and ``automatic_stop`` take every ladder image whose 128² fit has finished
    (Peppers at least); ``lipschitz_control`` and ``gaussian_control`` take Peppers. The
    folders default to the committed ``results/ladder`` and ``results/wide`` of the checkout.
    """
    ladder = results_path("ladder", "") if ladder is None else ladder
    out = results_path("wide", "") if out is None else out
    wide = resolve("wide")
    size = wide.image_size
    if not (Path(ladder) / "ladder.journal.jsonl").is_file():
        raise FileNotFoundError(f"no ladder journal in {str(ladder)!r}; give the ladder's "
                                "--out folder, or run `python -m dipspec.experiments.ladder`")
    ladder_journal = FitJournal(Path(ladder) / "ladder.journal.jsonl")
    sweep_journal = FitJournal(Path(out) / "wide.journal.jsonl")

    def rung(image, lam):
        return recorded(ladder_journal, ladder_key(image, size, lam, wide.channels,
                                                   device=device))

    wanted = {
        "fbc_noise": {image: rung(image, None) for image in LADDER_IMAGES},
        "lipschitz_control": {**{f"λ = {lam:g}": rung(WIDE_IMAGE, lam)
                                 for lam in wide.lipschitz_lambdas},
                              "plain DIP": rung(WIDE_IMAGE, None)},
        "gaussian_control": {
            f"σ = {sigma:g}": recorded(sweep_journal, {
                **sigma_key(sigma, device=device),
                "iterations": iterations or wide.iterations})
            for sigma in wide.gaussian_sigmas},
        "automatic_stop": {image: rung(image, STOP_LAMBDA) for image in LADDER_IMAGES},
    }
    figures, missing = {}, {}
    for name, runs in wanted.items():
        found = {label: fit for label, fit in runs.items() if fit is not None}
        # the multi-image figures draw the images finished so far; the others need every run
        complete = (WIDE_IMAGE in found) if name in ("fbc_noise", "automatic_stop") else (
            len(found) == len(runs))
        if complete:
            figures[name] = found
        lacking = [label for label, fit in runs.items() if fit is None]
        if lacking:
            missing[name] = lacking
    return figures, missing


def smoothing() -> int:
    """The PSNR smoothing of the wide figures and findings (the notebooks' ``Setup.smooth``)."""
    return max(10, resolve("wide").iterations // 100)


def findings(figures: dict[str, dict[str, RecordedFit]]) -> dict[str, dict[str, bool]]:
    """The notebooks' findings (the statements their checked cells print True at the quick
    scale) evaluated on the wide fits."""
    wide, smooth = resolve("wide"), smoothing()
    judge = {
        "fbc_noise": lambda runs: findings_spectral_bias(runs, smooth),
        "lipschitz_control": lambda runs: findings_lipschitz(runs, wide.lipschitz_lambdas,
                                                             smooth),
        "gaussian_control": lambda runs: findings_gaussian(runs, wide.gaussian_sigmas, smooth),
        "automatic_stop": lambda runs: findings_stopping(runs, smooth),
    }
    return {name: judge[name](runs) for name, runs in figures.items()}


def figure_provenance(name: str, runs: dict[str, RecordedFit]) -> dict:
    """The provenance JSON of a wide figure: the settings, the runs and their trajectories."""
    wide = resolve("wide")
    values = {"lipschitz_control": {"lambdas": list(wide.lipschitz_lambdas)},
              "gaussian_control": {"sigmas": list(wide.gaussian_sigmas),
                                   "lipschitz_lambda": wide.gaussian_lambda},
              "automatic_stop": {"lipschitz_lambda": STOP_LAMBDA, "stop_window": 100,
                                 "stop_eps": 0.01}}.get(name, {})
    return {"preset": "wide", "commit": commit(), "image_size": [wide.image_size] * 2,
            "channels": wide.channels,
            "iterations": int(max(r.history["iteration"].max() + 1 for r in runs.values())),
            "seed": 0, "noise_sigma": 25, **values, "runs": list(runs),
            "wall_time_s": round(sum(r.wall_time for r in runs.values()), 1),
            "sources": [r.source for r in runs.values()], "command": COMMAND}


def write_report(figures: dict[str, dict[str, RecordedFit]], missing: dict[str, list[str]],
                 stem: str | Path | None = None) -> dict[str, dict[str, bool]]:
    """``STEM.md`` and ``STEM.json``: per figure, the findings at the wide scale and the
    numbers behind them (peak, end, drop, FBC bands; the stop table); returns the findings.
    ``stem`` defaults to the checkout's ``results/wide``."""
    stem = results_path("wide", "") if stem is None else stem
    smooth, verdicts = smoothing(), findings(figures)
    tables = {name: summary(runs, smooth) for name, runs in figures.items()}
    if "automatic_stop" in figures:
        tables["automatic_stop (stop rule)"] = stop_table(figures["automatic_stop"], smooth)
    wide = resolve("wide")
    info = {"preset": "wide", "image_size": wide.image_size, "channels": wide.channels,
            "iterations": wide.iterations, "seed": 0, "noise_sigma": 25, "smooth": smooth,
            "commit": commit(), "figures_pending": missing, "command": COMMAND}
    lines = ["# The core figures at the paper's width (issue 14)", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "At the quick scale every finding below holds (the notebooks' checked cells); "
              "here each is evaluated unchanged on the wide fits.", ""]
    for name in figures:
        lines += [f"## {name}", ""]
        lines += [f"- {finding}: **{value}**" for finding, value in verdicts[name].items()]
        lines += ["", markdown_table(tables[name].reset_index(names="run"))]
        if name == "automatic_stop":
            lines += [markdown_table(tables["automatic_stop (stop rule)"].reset_index(
                names="run"))]
    payload = {"provenance": info, "findings": verdicts,
               "tables": {name: json.loads(table.to_json(orient="index"))
                          for name, table in tables.items()}}
    write_texts(stem, {".md": "\n".join(lines), ".json": json.dumps(
        payload, indent=1, ensure_ascii=False) + "\n"})
    return verdicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the σ sweep at the paper's width and the "
                                     "findings of the wide figures")
    parser.add_argument("--out", default="results/wide", help="the σ sweep's journal and fits")
    parser.add_argument("--ladder", default="results/ladder", help="the ladder's output folder")
    parser.add_argument("--table", default="results/wide",
                        help="where the findings go (STEM.md/.json)")
    parser.add_argument("--report-only", action="store_true", help="fit nothing")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.report_only:
            data.paper_registry()  # fail early on a broken install
            run_sigma_sweep(args.out, device=args.device, progress=not args.quiet)
        figures, missing = recorded_figures(args.ladder, args.out)
        verdicts = write_report(figures, missing, args.table)
    except (FitInterrupted, KeyboardInterrupt):
        print(f"interrupted: the σ sweep's checkpoint is kept in {args.out}; run the same "
              "command to continue", file=sys.stderr)
        return 130
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, found in verdicts.items():
        print(f"{name}: {sum(found.values())} of {len(found)} of the quick scale's findings hold")
    for name, lacking in missing.items():
        print(f"{name}: still lacks {', '.join(lacking)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
