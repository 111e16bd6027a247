"""``dipspec table architectures``: Chakrabarty & Maji's architecture table (SPEC §9).

The table is the sweep shipped as ``architectures`` (``dipspec sweep architectures`` runs the
same fits): this command applies its options to that spec (images, seeds, iterations, width,
PSNR reading, downsampling), runs it into ``OUT/architectures.sweep/`` — a sweep's folder: its
journal, one history per fit, its table and provenance — and writes the summary table
``architectures.{csv,md,json}`` in ``OUT``. The sweep's journal makes the table resumable: after
Ctrl-C, SIGTERM or a crash the same command runs only the missing fits, and a fit whose settings
changed runs again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import RunError, UsageError, interrupt_exit_code
from .inputs import check_device
from .sweep import check_sweep_folder, open_sweep_folder

__all__ = ["SWEEP_FOLDER", "spec_editor", "table_command"]

_ARCHITECTURES = "DIP, Linear-128, Linear-2048, ReLUNet"
#: The sweep behind the table, inside ``--out``.
SWEEP_FOLDER = "architectures.sweep"


def _architecture_names(names: list[str] | None) -> list[str]:
    from ..experiments.chakrabarty import ARCHITECTURES

    if not names:
        return list(ARCHITECTURES)
    by_key = {a.lower().removeprefix("dip ").replace(" ", ""): a for a in ARCHITECTURES}
    chosen = []
    for name in names:
        key = name.lower().removeprefix("dip ").replace(" ", "")
        if key not in by_key:
            raise UsageError(f"--architectures: unknown architecture {name!r}; choose from "
                             f"{_ARCHITECTURES}")
        chosen.append(by_key[key])
    return chosen


def _iterations(value: str | None, architectures: list[str]) -> dict[str, int]:
    def count(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"--iterations needs whole numbers, got {text!r}") from None
        if number < 1:
            raise UsageError(f"--iterations must be >= 1, got {number}")
        return number

    if value is None:
        return {}
    if "=" not in value:
        return dict.fromkeys(architectures, count(value))
    given = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        try:
            given[_architecture_names([name.strip()])[0]] = count(number.strip())
        except UsageError as err:
            raise UsageError(f"--iterations {value}: {err}") from None
    missing = [a for a in architectures if a not in given]
    if missing:
        raise UsageError(f"--iterations gives no count for {', '.join(missing)}")
    return {a: given[a] for a in architectures}


def spec_editor(architectures: list[str], iterations: dict[str, int], seeds: int, factor: int,
                images: list[str] | None = None, dip_channels: int | None = None,
                log_every: int | None = None):
    """The edit that turns the shipped ``architectures`` spec into the table these options ask
    for (:func:`~dipspec.experiments.sweep.load_spec`'s ``edit``). ``None`` keeps the spec's
    value: iterations, width and PSNR reading are those of the committed table unless given."""
    from ..experiments.sweep.keys import canonical_model

    def edit(spec: dict) -> dict:
        spec["defaults"]["downsample"] = factor
        grids = []
        for grid in spec["grid"]:
            name = canonical_model(grid["model"])
            if name not in architectures:
                continue
            grid["seed"] = list(range(seeds))
            if images:
                chosen = [s for s in grid["image"] if any(n.lower() in s.lower() for n in images)]
                if not chosen:
                    raise UsageError(f"--images {' '.join(images)}: no denoising image matches; "
                                     f"the images are {', '.join(grid['image'])}")
                grid["image"] = chosen
            if name in iterations:
                grid["iterations"] = iterations[name]
            if log_every is not None:
                grid["log_every"] = log_every
            if name == "DIP" and dip_channels is not None:
                grid["channels"] = dip_channels
            grids.append(grid)
        spec["grid"] = grids
        return spec

    return edit


def table_command(args) -> int:
    """Run (or resume) the table's sweep and write its CSV, markdown and provenance JSON."""
    import torch

    from ..experiments import chakrabarty
    from ..experiments.sweep import (
        BatchFailed,
        architecture_rows,
        load_spec,
        run_sweep,
        shipped_spec,
    )
    from ..experiments.sweep.store import SweepStore
    from ..viz import plots

    architectures = _architecture_names(args.architectures)
    iterations = _iterations(args.iterations, architectures)
    device = check_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    if args.update and not all((out / f"architectures{s}").is_file() for s in (".csv", ".json")):
        raise UsageError(f"--update: no table to update in {args.out} (needs architectures.csv "
                         "and architectures.json); run without --update first")
    typed = str(out / SWEEP_FOLDER)
    folder = check_sweep_folder(typed)
    if args.threads:
        torch.set_num_threads(args.threads)
    edit = spec_editor(architectures, iterations, args.seeds, args.factor, args.images,
                       args.dip_channels, args.log_every)
    sweep = load_spec(shipped_spec("architectures"), device.type, edit=edit)
    shapes = {fit.config["image"]: list(fit.shape[1:]) for fit in sweep.fits}
    settings = dict(factor=args.factor, sigma="25/255", seeds=list(range(args.seeds)),
                    images=dict(sorted(shapes.items())))
    if args.update:  # before hours of fits, not after
        chakrabarty.check_updatable(args.out, settings)
    first = {}  # the settings of each architecture, as run
    for fit in sweep.fits:
        first.setdefault(fit.config["model"], fit.config)
    # provenance first: the commit is the code that runs, not the checkout hours later
    info = plots.provenance(
        "table architectures", command="dipspec table architectures", **settings,
        iterations={a: c["iterations"] for a, c in first.items()},
        dip_channels=first.get("DIP", {}).get("channels"),
        learning_rates={a: c["lr"] for a, c in first.items()},
        psnr="best over the trajectory (oracle), read every "
             + ", ".join(f"{c['log_every']} ({a})" for a, c in first.items()) + " iteration(s)",
        device=chakrabarty.machine() if device.type == "cpu" else str(device),
        torch=torch.__version__, sweep=f"{SWEEP_FOLDER}/ (the shipped spec architectures, "
                                        "edited by this command's options)")
    lock: list[int | None] = []
    try:
        report = run_sweep(sweep, folder, device=device, progress=False if args.quiet else None,
                           echo=(lambda _: None) if args.quiet else print,
                           before_writing=lambda: lock.append(open_sweep_folder(folder, typed)))
    except BatchFailed as err:
        raise RunError(f"{err}; the other fits are journalled in {folder}: fix the cause and "
                       "run the same command again") from err
    except KeyboardInterrupt as stop:
        kept = len(SweepStore(folder).done(sweep.fits))
        print(f"dipspec: interrupted; {kept} finished fits are kept in {folder}: run the same "
              "command again to continue", file=sys.stderr)
        return interrupt_exit_code(stop)
    finally:
        for fd in lock:
            if fd is not None:
                os.close(fd)
    rows = architecture_rows(report.table)  # in the old table's order: image, seed, model
    rank = rows["architecture"].map({name: i for i, name in enumerate(architectures)})
    rows = rows.assign(rank=rank).sort_values(["image", "seed", "rank"], kind="stable")
    rows = rows.drop(columns="rank").reset_index(drop=True)
    info["wall_time_s"] = round(float(rows["wall_time_s"].sum()), 1)
    if report.reused:
        info["resumed"] = f"{report.reused} of {report.total} fits read from the journal"
    write = chakrabarty.update_table if args.update else chakrabarty.write_table
    paths = write(rows, args.out, info)
    print(f"{len(rows)} fits ({report.ran} run now in {report.wall_time_s:.0f} s); table in "
          f"{paths['md'].resolve()}; each fit's history in {folder / 'histories'}")
    return 0
