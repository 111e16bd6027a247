"""The λ-robustness table (issue 14) and the trajectories the stopping study reads (issue 15).

For each of the paper's nine denoising images (σ = 25) and each seed, four fits run together
with :func:`dipspec.fit_many`: plain DIP and the preset's λ with its two neighbours (± 0.2).
Each finished fit is one line of a :class:`FitJournal` (resumable, like the ladder) and one
``.npz`` of its per-iteration trajectory: PSNR, loss, the five FBC bands, blurriness, sharpness
and their ratio, and the two output-variance curves of Wang et al.'s rules (ES-WMV's windowed
variance, ES-EMV's exponential one), recorded while the fit runs because they need the output
images. A stop rule can then be judged on these curves without another fit. Run it as::

    python -m dipspec.experiments.robustness --preset quick    # → results/robustness/quick

and the table of every preset run so far is written to ``results/lambda_robustness.*``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import tasks
from ..fitting import FitInterrupted
from ..presets import Preset, resolve
from .chakrabarty.tables import FitJournal
from .setup import load
from .trajectories import (
    CHECKPOINT_EVERY,
    journal_rows,
    label,
    load_trajectory,
    markdown_table,
    read_result_table,
    record_fits,
    write_texts,
)

__all__ = ["ROBUSTNESS_IMAGES", "TABLE_COLUMNS", "aggregate", "lambdas_around", "means",
           "read_results", "recompute", "robustness_rows", "run_robustness", "write_results"]

#: The nine denoising images of the paper's data.
ROBUSTNESS_IMAGES = ("Baboon", "F16", "House", "Lena", "Peppers", "kodim01", "kodim02",
                     "kodim03", "kodim12")


def lambdas_around(preset: Preset, step: float = 0.2) -> tuple[float | None, ...]:
    """Plain DIP, then the preset's denoising λ and its two neighbours."""
    lam = preset.lipschitz_lambda
    return (None, round(lam - step, 3), lam, round(lam + step, 3))


def run_robustness(out: str | Path, preset: str | Preset = "quick",
                   images: Sequence[str] = ROBUSTNESS_IMAGES, seeds: Sequence[int] = (0, 1, 2),
                   iterations: int | None = None, device: str = "cpu",
                   progress: bool = True) -> Path:
    """Run every missing (image, seed); return the journal's path.

    Images are resized to the preset's ``image_size``; the decoder has the preset's width,
    its layout and arithmetic; ``iterations`` defaults to the preset's.
    """
    scale = resolve(preset)
    out = Path(out)
    journal = FitJournal(out / "robustness.journal.jsonl")
    steps = iterations or scale.iterations
    lambdas = lambdas_around(scale)
    for seed in seeds:
        for image in images:
            keys = [{"image": image, "size": scale.image_size, "width": scale.channels,
                     "lambda": label(lam), "seed": seed, "iterations": steps,
                     "noise_sigma": 25, "preset": scale.name} for lam in lambdas]
            todo = [(lam, key) for lam, key in zip(lambdas, keys) if journal.get(key) is None]
            if not todo:
                continue
            clean = load(image, scale.image_size, preset=scale)
            # beyond the quick scale a group of fits takes hours on a CPU: checkpoint it
            record_fits(out, journal, tasks.Denoise(25 / 255, clean=clean, seed=seed), todo,
                        seed, scale, steps, device, progress, prefix=f"{image}_s{seed}",
                        checkpoint_every=None if scale.name == "quick" else CHECKPOINT_EVERY)
    return journal.path


def robustness_rows(journal_path: str | Path) -> pd.DataFrame:
    """The finished fits of a robustness journal as a table (one row per fit)."""
    return journal_rows(journal_path)


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Per λ (plain, the preset's and its neighbours): means over images and seeds of the peak,
    the end, their gap, and how the paper's stop rule did (fire rate, gap to the peak where it
    fired) and the recommended rule (fire rate, gap of the output it returns)."""
    rows = rows.assign(stop_gap_db=rows["peak_psnr"] - rows["stop_psnr"].astype(float))
    if "auto_stop_psnr" in rows:
        rows = rows.assign(auto_stop_gap_db=rows["peak_psnr"] - rows["auto_stop_psnr"])
    grouped = rows.groupby("lambda", sort=False)
    auto = {} if "auto_stop_psnr" not in rows else {
        "auto_stop_fired": grouped["auto_stop_iteration"].apply(
            lambda s: float(s.notna().mean())),
        "auto_stop_gap_db": grouped["auto_stop_gap_db"].mean(),
        "worst_auto_stop_gap_db": grouped["auto_stop_gap_db"].max()}
    return pd.DataFrame({
        "fits": grouped.size(),
        "peak_psnr": grouped["peak_psnr"].mean(),
        "final_psnr": grouped["final_psnr"].mean(),
        "decay_db": grouped["decay_db"].mean(),
        "worst_decay_db": grouped["decay_db"].max(),
        "smooth_final_psnr": grouped["smooth_final_psnr"].mean(),
        "stop_fired": grouped["stop_iteration"].apply(lambda s: float(s.notna().mean())),
        "stop_gap_db": grouped["stop_gap_db"].mean(),
        **auto,
    }).round(3)


#: The table's columns, one row per fit.
TABLE_COLUMNS = ["preset", "image", "seed", "lambda", "peak_psnr", "peak_iteration",
                 "final_psnr", "decay_db", "smooth_peak_psnr", "smooth_final_psnr",
                 "stop_iteration", "stop_psnr", "auto_stop_iteration", "auto_stop_psnr"]


def _with_recommended_stop(rows: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Add where the kit's recommended denoising rule (the discrepancy principle, replayed on
    the recorded loss) stops each fit, and the PSNR there (the final PSNR when it never does)."""
    from .stopping_eval import RULES, noise_sigma

    at, value = [], []
    for _, row in rows.iterrows():
        frame = load_trajectory(root / row["trajectory"])
        detected, _ = RULES["discrepancy"](frame, noise_sigma(frame, {**row, "task": "denoise"}))
        psnr = frame["psnr"].to_numpy()
        at.append(detected)
        value.append(float(psnr[-1] if detected is None else
                           psnr[np.searchsorted(frame["iteration"].to_numpy(), detected)]))
    return rows.assign(auto_stop_iteration=pd.array(at, dtype="Int64"), auto_stop_psnr=value)


def write_results(journal_paths: Sequence[str | Path], stem: str | Path,
                  **provenance) -> pd.DataFrame:
    """``STEM.csv`` (one row per fit), ``STEM.md`` (means per preset and λ, then the rows) and
    ``STEM.json`` (provenance, means, rows), each written atomically; returns the means.

    Each fit also gets where the paper's rule (SPEC §6) and the kit's recommended rule
    (``auto_stop``: the discrepancy principle) stop it, replayed on its trajectory.
    """
    frames = [_with_recommended_stop(robustness_rows(path), Path(path).parent)
              for path in map(Path, journal_paths)]
    rows = pd.concat(frames, ignore_index=True)
    table = (rows[TABLE_COLUMNS].sort_values(["preset", "image", "seed", "lambda"])
             .reset_index(drop=True).round(3))
    summary = means(rows)
    info = {"fits": len(rows), "commits": sorted(set(rows["commit"])),
            "machines": sorted(set(rows["machine"])), **provenance}
    texts = {
        ".csv": table.to_csv(index=False),
        ".md": ("# λ robustness (issue 14)\n\n" + "\n".join(
            f"- {k}: {v}" for k, v in info.items()) + "\n\n## Means per preset and λ\n\n"
            + markdown_table(summary.reset_index()) + "\n## Fits\n\n" + markdown_table(table)),
        ".json": json.dumps({"provenance": info,
                             "means": summary.reset_index().to_dict("records"),
                             "rows": table.to_dict("records")}, indent=1, default=str) + "\n",
    }
    write_texts(stem, texts)
    return summary


def read_results(path: str | Path = "lambda_robustness") -> pd.DataFrame:
    """The λ-robustness table (one row per fit), λ as text (``"plain"``, ``"1.2"``): a CSV
    path, or the stem of a committed table in ``results/``."""
    return read_result_table(path, "python -m dipspec.experiments.robustness")


def means(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`aggregate` of every preset in a table of fits (as :func:`read_results` gives)."""
    return pd.concat({preset: aggregate(group) for preset, group in table.groupby("preset")},
                     names=["preset"])


def recompute(image: str, seed: int = 0, preset: str | Preset = "quick",
              iterations: int | None = None, progress: bool = True) -> pd.DataFrame:
    """One image's four fits of the table again (in a temporary folder): its rows, as in the
    table, for comparison with the committed ones."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dipspec-robustness-") as folder:
        journal = run_robustness(folder, preset, [image], [seed], iterations, "auto", progress)
        rows = _with_recommended_stop(robustness_rows(journal), Path(folder))
    return rows[TABLE_COLUMNS].round(3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the λ-robustness runs of issue 14")
    parser.add_argument("--preset", default="quick", choices=("quick", "wide", "paper"))
    parser.add_argument("--out", default=None, help="default results/robustness/PRESET")
    parser.add_argument("--images", nargs="+", default=list(ROBUSTNESS_IMAGES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--table", default="results/lambda_robustness",
                        help="where the table of every preset's runs goes (STEM.csv/.md/.json)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or f"results/robustness/{args.preset}"
    try:
        run_robustness(out, args.preset, args.images, args.seeds, args.iterations,
                       args.device, progress=not args.quiet)
    except (FitInterrupted, KeyboardInterrupt):
        print(f"interrupted: finished fits are kept in {out}; run the same command to "
              "continue", file=sys.stderr)
        return 130
    journals = sorted(Path(out).parent.glob("*/robustness.journal.jsonl"))
    summary = write_results(journals, args.table, noise_sigma=25,
                            runs=[str(j.parent) for j in journals])
    print(summary.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
