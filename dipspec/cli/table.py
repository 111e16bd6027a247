"""``dipspec table architectures``: Chakrabarty & Maji's architecture table (SPEC §9).

Every finished fit is journalled in ``OUT/architectures.journal.jsonl`` (one line each, synced
to disk), so after Ctrl-C, SIGTERM or a crash the same command runs only the missing fits; a
fit whose settings changed runs again. The journal is removed once the table is written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import UsageError, interrupt_exit_code
from .inputs import check_device

__all__ = ["table_command"]

_ARCHITECTURES = "DIP, Linear-128, Linear-2048, ReLUNet"


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


def _iterations(value: str, architectures: list[str]) -> dict[str, int]:
    def count(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"--iterations needs whole numbers, got {text!r}") from None
        if number < 1:
            raise UsageError(f"--iterations must be >= 1, got {number}")
        return number

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


def table_command(args) -> int:
    """Run (or resume) the table and write its CSV, markdown and provenance JSON."""
    import torch

    from ..experiments import chakrabarty
    from ..experiments.chakrabarty.tables import FitJournal
    from ..nn import retain_freed_memory
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
    images = chakrabarty.table_images(args.factor, args.images)
    settings = dict(factor=args.factor, sigma="25/255", seeds=list(range(args.seeds)),
                    images={k: list(v.shape[-2:]) for k, v in images.items()})
    if args.update:  # before hours of fits, not after
        chakrabarty.check_updatable(args.out, settings)
    if args.threads:
        torch.set_num_threads(args.threads)
    retain_freed_memory()  # DIP Linear-2048 steps 3-4x faster on a CPU
    journal = FitJournal(Path(args.out) / "architectures.journal.jsonl")
    if len(journal) and not args.quiet:
        print(f"{journal.path} holds {len(journal)} finished fits: those with the same "
              "settings are not run again", flush=True)
    # provenance first: the commit is the code that runs, not the checkout hours later
    info = plots.provenance(
        "table architectures", command="dipspec table architectures", **settings,
        iterations=iterations, dip_channels=args.dip_channels,
        learning_rates=chakrabarty.LEARNING_RATES,
        psnr=f"best over the trajectory (oracle), read every {args.log_every} iteration(s)",
        device=chakrabarty.machine() if device.type == "cpu" else str(device),
        torch=torch.__version__)
    started = time.perf_counter()
    try:
        rows = chakrabarty.architecture_table(
            images, seeds=range(args.seeds), iterations=iterations, architectures=architectures,
            dip_channels=args.dip_channels, device=device, on_row=_reporter(args.quiet),
            log_every=args.log_every, journal=journal)
    except KeyboardInterrupt as stop:
        print(f"dipspec: interrupted; {len(journal)} finished fits are kept in {journal.path}: "
              "run the same command again to continue", file=sys.stderr)
        return interrupt_exit_code(stop)
    wall = round(time.perf_counter() - started, 1)
    info["wall_time_s"] = round(wall + journal.reused_seconds, 1)  # fits of earlier runs too
    if journal.reused:
        info["resumed"] = f"{journal.reused} of {len(rows)} fits read from the journal"
    write = chakrabarty.update_table if args.update else chakrabarty.write_table
    paths = write(rows, args.out, info)
    journal.remove()
    print(f"{len(rows)} fits in {wall:.0f} s; table in {paths['md'].resolve()}")
    return 0


def _reporter(quiet: bool):
    def report(row: dict) -> None:
        if not quiet:
            print(f"{row['image']:>22} {row['architecture']:>16} seed {row['seed']}: "
                  f"{row['psnr']:.2f} dB at {row['best_iteration']} ({row['wall_time_s']:.0f} s)",
                  flush=True)
    return report
