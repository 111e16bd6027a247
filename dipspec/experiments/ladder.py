"""The resolution ladder: does the paper's λ ordering depend on scale or on method? (issue 14)

At the paper's width (128 channels) and one seed, each paper image is denoised (σ = 25) at
several sizes with λ = 1, 2, 3 and plain DIP, the four fits of one (image, size) batched with
:func:`dipspec.fit_many`. Each finished fit is one line of a :class:`FitJournal`, so a run
stopped by Ctrl-C, SIGTERM or the end of a session continues where it was, and the table can
be read at any time from the finished fits. Run it as a module::

    python -m dipspec.experiments.ladder --out results/ladder          # every rung
    python -m dipspec.experiments.ladder --out results/ladder --sizes 64 --images Peppers
    python -m dipspec.experiments.ladder --out results/ladder --report-only   # the table
    python -m dipspec.experiments.ladder --sizes 256 --images Peppers --lambdas 1 plain

``--lambdas`` runs part of a rung (the rest later, into the same journal): a 256² rung of four
fits takes longer than one session on a 2-core CPU, and a checkpoint, kept outside git, does
not outlive the session.

Each run ends by writing the table of the fits finished so far, ``results/ladder.{csv,md,json}``
(:func:`write_report`: one row per fit, the ordering per rung, the rungs still pending), so a
ladder that spans sessions is committed with honest provenance rather than not at all.

The paper's ordering holds at a rung when λ = 1 peaks lowest (over-smooths), λ = 2 holds the best
final PSNR, and λ = 3 decays (peak − final larger than λ = 2's); :func:`ordering` states this per
rung from the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from .. import data, tasks
from ..fitting import FitInterrupted
from ..presets import resolve
from .chakrabarty.tables import FitJournal
from .setup import load
from .trajectories import (
    CHECKPOINT_EVERY,
    journal_rows,
    label,
    markdown_table,
    read_result_table,
    record_fits,
    write_texts,
)

__all__ = ["LADDER_IMAGES", "LADDER_LAMBDAS", "LADDER_SIZES", "ladder_key", "ladder_rows",
           "checked_lambdas", "ordering", "read_ladder", "run_ladder", "write_report"]

#: Peppers and two more of the paper's denoising images: a smooth one and a textured one.
LADDER_IMAGES = ("Peppers", "F16", "Baboon")
#: Image side → iterations: 5000 at 128² (the wide preset); 256² runs fewer because each step
#: costs ~6× more and the peak comes earlier there (a stated choice, not a tuned one).
LADDER_SIZES = {64: 3000, 128: 5000, 256: 3000}
#: The paper's three λ and plain DIP (None).
LADDER_LAMBDAS = (1.0, 2.0, 3.0, None)
#: The finished fits of a ladder journal as a table (one row per fit, no curves).
ladder_rows = journal_rows


def ladder_key(image: str, size: int, lipschitz_lambda: float | None, width: int = 128,
               seed: int = 0, iterations: int | None = None, precision: str = "fp32",
               device: str = "cpu") -> dict:
    """The journal key of one ladder fit (``iterations`` default: :data:`LADDER_SIZES`'s)."""
    steps = iterations or LADDER_SIZES.get(size, 3000)
    return {"image": image, "size": size, "width": width, "lambda": label(lipschitz_lambda),
            "seed": seed, "iterations": steps, "noise_sigma": 25, "precision": precision,
            "device": device}


def run_ladder(out: str | Path, images: Sequence[str] = LADDER_IMAGES,
               sizes: Sequence[int] = tuple(LADDER_SIZES), width: int = 128, seed: int = 0,
               precision: str = "fp32", device: str = "auto", progress: bool = True,
               iterations: dict[int, int] | None = None,
               lambdas: Sequence[float | None] = LADDER_LAMBDAS) -> Path:
    """Run every missing rung; return the journal's path (``OUT/ladder.journal.jsonl``).

    A rung is one (image, size): its four fits (λ = 1, 2, 3, plain) run together, or only
    those in ``lambdas`` (a subset of :data:`LADDER_LAMBDAS`; None is plain DIP). Finished
    fits already in the journal with the same settings are skipped. ``iterations`` maps a
    size to its iteration count (default :data:`LADDER_SIZES`, 3000 for other sizes).
    """
    lambdas = checked_lambdas(lambdas)
    counts = {**LADDER_SIZES, **(iterations or {})}
    journal = FitJournal(Path(out) / "ladder.journal.jsonl")
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)
    scale = resolve("auto", device)  # the loop's settings, as fit_many's default
    for size in sizes:
        steps = counts.get(size, 3000)
        for image in images:
            keys = [ladder_key(image, size, lam, width, seed, steps, precision, device.type)
                    for lam in lambdas]
            todo = [(lam, key) for lam, key in zip(lambdas, keys)
                    if journal.get(key) is None]
            if not todo:
                continue
            clean = load(image, size)
            task = tasks.Denoise(25 / 255, clean=clean, seed=seed)
            record_fits(out, journal, task, todo, seed, scale, steps, device, progress,
                        prefix=f"{image}_{size}_s{seed}", channels=width, precision=precision,
                        checkpoint_every=CHECKPOINT_EVERY)
    return journal.path


def checked_lambdas(lambdas: Sequence[float | str | None]) -> tuple[float | None, ...]:
    """``lambdas`` as ladder λ (``"plain"`` or None: plain DIP), in the ladder's order; a
    ValueError names any λ the ladder does not run."""
    wanted = {None if lam in (None, "plain") else _as_float(lam) for lam in lambdas}
    unknown = wanted - set(LADDER_LAMBDAS)
    if unknown or not wanted:
        known = ", ".join(label(lam) for lam in LADDER_LAMBDAS)
        named = ", ".join(sorted(u if isinstance(u, str) else label(u) for u in unknown))
        raise ValueError(f"the ladder runs λ = {known}, not {named or 'none at all'}; give a "
                         "subset of them, e.g. --lambdas 1 plain")
    return tuple(lam for lam in LADDER_LAMBDAS if lam in wanted)


def _as_float(value) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def ordering(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (image, size): does the paper's ordering hold? And which λ ends best?

    Columns: ``over_smooths`` (λ = 1 has the lowest peak of the three λ), ``two_best``
    (λ = 2 has the best final PSNR of the three λ), ``three_decays`` (λ = 3 loses more from
    its peak than λ = 2), ``holds`` (all three), ``best_final_lambda``.
    """
    out = []
    for (image, size), rung in rows.groupby(["image", "size"]):
        by = rung.set_index("lambda")
        if not {"1", "2", "3"} <= set(by.index):
            continue
        lams = by.loc[["1", "2", "3"]]
        entry = {"image": image, "size": size,
                 "over_smooths": bool(lams["peak_psnr"].idxmin() == "1"),
                 "two_best": bool(lams["final_psnr"].idxmax() == "2"),
                 "three_decays": bool(by.loc["3", "decay_db"] > by.loc["2", "decay_db"]),
                 "best_final_lambda": str(by["final_psnr"].idxmax())}
        entry["holds"] = entry["over_smooths"] and entry["two_best"] and entry["three_decays"]
        out.append(entry)
    return pd.DataFrame(out)


#: The table's columns: the rung, the fit's setting and what it did (PSNR in dB).
TABLE_COLUMNS = ["image", "size", "lambda", "iterations", "peak_psnr", "peak_iteration",
                 "final_psnr", "decay_db", "smooth_peak_psnr", "smooth_final_psnr",
                 "wall_time_s"]


def write_report(journal_path: str | Path, stem: str | Path = "results/ladder",
                 images: Sequence[str] = LADDER_IMAGES,
                 sizes: Sequence[int] = tuple(LADDER_SIZES)) -> pd.DataFrame:
    """``STEM.csv`` (one row per finished fit), ``STEM.md`` (the ordering per rung, then the
    fits) and ``STEM.json`` (provenance, rungs done and pending, ordering, rows), each written
    atomically; returns the ordering (:func:`ordering`)."""
    rows = ladder_rows(journal_path)
    order = {lam: k for k, lam in enumerate(("1", "2", "3", "plain"))}
    table = (rows[TABLE_COLUMNS].assign(_o=rows["lambda"].map(order))
             .sort_values(["size", "image", "_o"]).drop(columns="_o").round(3)
             .reset_index(drop=True))
    verdict = ordering(rows)
    finished = {(image, int(size)): set(rung["lambda"])
                for (image, size), rung in rows.groupby(["image", "size"])}
    pending = [_pending(image, size, finished.get((image, size), set()))
               for size in sizes for image in images
               if len(finished.get((image, size), ())) < len(LADDER_LAMBDAS)]
    info = {"fits": len(rows), "width": sorted(set(rows["width"])),
            "seed": sorted(set(rows["seed"])), "noise_sigma": 25,
            "iterations_per_size": {int(s): int(i) for s, i in
                                    rows.groupby("size")["iterations"].max().items()},
            "commits": sorted(set(rows["commit"])), "machines": sorted(set(rows["machine"])),
            "rungs_pending": pending,
            "command": "python -m dipspec.experiments.ladder --out results/ladder"}
    texts = {
        ".csv": table.to_csv(index=False),
        ".md": ("# The resolution ladder (issue 14)\n\n" + "\n".join(
            f"- {k}: {v}" for k, v in info.items()) + "\n\n## Does the paper's ordering hold?"
            "\n\nλ = 1 peaks lowest (over-smooths), λ = 2 ends best of the three λ, λ = 3 "
            "decays more than λ = 2.\n\n" + markdown_table(verdict)
            + "\n## Fits\n\n" + markdown_table(table)),
        ".json": json.dumps({"provenance": info, "ordering": verdict.to_dict("records"),
                             "rows": table.to_dict("records")}, indent=1, default=str) + "\n",
    }
    write_texts(stem, texts)
    return verdict


def _pending(image: str, size: int, finished: set[str]) -> str:
    """A rung still to run, naming its missing fits when some have finished."""
    if not finished:
        return f"{image} {size}²"
    missing = [label(lam) for lam in LADDER_LAMBDAS if label(lam) not in finished]
    return f"{image} {size}² (λ = {', '.join(missing)} to run)"


def read_ladder(path: str | Path = "ladder") -> pd.DataFrame:
    """The ladder's table (one row per fit, λ as text): a CSV path, or the stem of the
    committed table in ``results/``."""
    return read_result_table(path, "python -m dipspec.experiments.ladder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the resolution ladder of issue 14")
    parser.add_argument("--out", default="results/ladder")
    parser.add_argument("--images", nargs="+", default=list(LADDER_IMAGES))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(LADDER_SIZES))
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--lambdas", nargs="+", default=None, metavar="LAMBDA",
                        help="run only these of the rung's fits (1, 2, 3, plain), e.g. to split "
                             "a 256² rung across sessions (default: all four)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--table", default="results/ladder",
                        help="where the table of the finished fits goes (STEM.csv/.md/.json)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the table from the journal; fit nothing")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    journal = Path(args.out) / "ladder.journal.jsonl"
    if args.report_only:
        if not journal.is_file():
            parser.error(f"no ladder journal at {journal}; run the ladder first")
        print(write_report(journal, args.table, args.images, args.sizes).to_string(index=False))
        return 0
    try:
        lambdas = checked_lambdas(args.lambdas or LADDER_LAMBDAS)
    except ValueError as err:
        parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    data.paper_registry()  # fail early on a broken install
    try:
        path = run_ladder(args.out, args.images, args.sizes, args.width,
                          precision=args.precision, device=args.device,
                          progress=not args.quiet, lambdas=lambdas)
    except (FitInterrupted, KeyboardInterrupt):
        print(f"interrupted: finished fits are kept in {journal}; run the same command to "
              "continue", file=sys.stderr)
        return 130
    except (OSError, ValueError) as err:  # e.g. a paper image that cannot be had
        print(f"ladder: error: {err}", file=sys.stderr)
        return 2
    print(write_report(path, args.table, args.images, args.sizes).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
