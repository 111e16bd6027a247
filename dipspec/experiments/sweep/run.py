"""Run a sweep: check the spec, skip what the journal holds, run the rest, write the table.

:func:`run_sweep` is the whole of ``dipspec sweep`` below the command line: the spec is read
and every configuration checked (and its image loaded) before the first fit; the batches still
missing run on the engine; each finished batch is journalled at once; the table and the
provenance are written at the end — also after Ctrl-C or a failed batch, for the fits done.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .. import fallback
from ..provenance import commit
from .engines import BatchFailed, make_engine
from .plan import Batch, plan
from .spec import Sweep, image_key, load_spec, select
from .store import SweepStore

__all__ = ["SweepReport", "run_sweep"]


@dataclass
class SweepReport:
    """What a sweep did: counts, time, where the table is, and the table itself."""

    name: str
    out: Path
    total: int
    reused: int
    ran: int
    batches: int
    wall_time_s: float
    engine: str
    state: str
    table: pd.DataFrame = field(repr=False)
    plan: list[Batch] = field(default_factory=list, repr=False)
    duplicates: int = 0

    def summary(self) -> str:
        """A few lines for the end of ``dipspec sweep``."""
        lines = [f"sweep {self.name}: {self.total} fits — {self.ran} run now in {self.batches} "
                 f"batch(es) ({self.wall_time_s:.0f} s, {self.engine}), {self.reused} from "
                 f"the journal" + (f"; {self.duplicates} duplicate configuration(s) dropped"
                                   if self.duplicates else "")]
        done = self.table.dropna(subset=["peak_psnr"]) if len(self.table) else self.table
        if len(done):
            best = done.loc[done["peak_psnr"].idxmax()]
            lines.append(f"best peak PSNR {best['peak_psnr']:.2f} dB at iteration "
                         f"{int(best['peak_iteration'])}: {best['entry']}")
        if self.state != "complete":
            lines.append(f"{self.state}: {len(self.table)} of {self.total} fits in the table; "
                         "run the same command again to run the missing ones")
        lines.append(f"table: {self.out / 'table.csv'} ({len(self.table)} rows); histories "
                     f"in {self.out / 'histories'}")
        return "\n".join(lines)


def run_sweep(spec: str | Path | Sweep, out: str | Path, *, engine: str = "local",
              address: str | None = None, device: str | torch.device = "auto",
              progress: bool | None = None, dry_run: bool = False,
              only: Mapping[str, Sequence[str]] | None = None,
              echo: Callable[[str], None] = print,
              before_writing: Callable[[], None] | None = None) -> SweepReport:
    """Run the fits of ``spec`` that ``out`` does not hold yet, and write its table.

    Parameters
    ----------
    spec : path, str or Sweep
        A ``.toml`` / ``.yaml`` spec, a shipped spec's name (``"architectures"``), or a spec
        already read with :func:`~dipspec.experiments.sweep.spec.load_spec`.
    out : path
        The sweep's folder: journal, histories, table and provenance
        (:mod:`~dipspec.experiments.sweep.store`). Reused by the next run of the same or a
        changed spec: journalled fits are not run again.
    engine : {"local", "ray"}
    address : str, optional
        Ray only: the cluster to join (``"auto"``, ``"ray://head:10001"``); default a new
        local Ray.
    device : str
        Local only: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress : bool, optional
        A progress bar over the fits (done / total, ETA); default on in a terminal.
    dry_run : bool
        Check the spec and show the plan; run nothing, write nothing.
    only : mapping, optional
        Run only the fits whose keys take these values (``{"seed": ["0"]}``); the table then
        holds those fits.
    echo : callable
        Where the plan's lines go.
    before_writing : callable, optional
        Called once the spec is checked, before anything is written (the CLI locks and marks
        its output folder there, so a bad spec leaves nothing behind).

    Raises
    ------
    SpecError
        (a ``ValueError``) Before any fit, for a spec that cannot run.
    BatchFailed
        After the other batches ran and were journalled, if some batches raised.
    KeyboardInterrupt
        Ctrl-C: the fits in flight are lost, the table of the others is written.
    """
    runner = make_engine(engine, address, device)
    try:
        sweep = spec if isinstance(spec, Sweep) else load_spec(spec, runner.device_type)
        if only:
            sweep = select(sweep, only)
        store = SweepStore(out)
        done = store.done(sweep.fits)
        batches = plan(sweep.fits, sweep.max_batch, done)
        echo(f"sweep {sweep.name}: {len(sweep.fits)} fits, {len(done)} in the journal, "
             f"{sum(len(b.fits) for b in batches)} to run in {len(batches)} batch(es) on "
             f"{runner.describe()}")
        if dry_run:
            for batch in batches:
                echo(f"  {batch.describe()}: {', '.join(f.entry for f in batch.fits)}")
            return SweepReport(sweep.name, Path(out), len(sweep.fits), len(done), 0,
                               len(batches), 0.0, engine, "dry run", pd.DataFrame(), batches,
                               sweep.duplicates)
        if before_writing is not None:
            before_writing()
        return _execute(sweep, store, runner, batches, len(done), progress)
    finally:
        runner.close()


def _execute(sweep: Sweep, store: SweepStore, runner, batches: list[Batch], reused: int,
             progress: bool | None) -> SweepReport:
    from tqdm.auto import tqdm

    store.out.mkdir(parents=True, exist_ok=True)
    info, run = _provenance(sweep, runner, store)
    runs = store.previous_runs()
    store.write_provenance({**info, "state": "running", "runs": [*runs, run]})
    bar = tqdm(total=len(sweep.fits), initial=reused, unit="fit", desc=sweep.name,
               disable=not _show(progress), dynamic_ncols=True)
    ran, state, started = 0, "complete", time.perf_counter()

    def on_done(batch: Batch, results: list) -> None:
        nonlocal ran
        store.record(batch, results)
        ran += len(batch.fits)
        bar.update(len(batch.fits))
        bar.set_postfix_str(batch.describe(), refresh=True)

    try:
        runner.run(batches, lambda b: [sweep.images[image_key(f)] for f in b.fits], on_done)
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    except BatchFailed:
        state = "failed"
        raise
    finally:
        bar.close()
        wall = round(time.perf_counter() - started, 1)
        table = store.table(sweep.fits)
        if len(table):
            store.write_table(table)
        run.update(state=state, fits_run=ran, fits_from_journal=reused, batches=len(batches),
                   wall_time_s=wall, finished=time.strftime("%FT%T%z"),
                   image_fallbacks=fallback.fallbacks_used())
        store.write_provenance({**info, "state": state, "fits_in_table": len(table),
                                "runs": [*runs, run]})
    return SweepReport(sweep.name, store.out, len(sweep.fits), reused, ran, len(batches), wall,
                       runner.describe(), state, table, batches, sweep.duplicates)


def _show(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("DIPSPEC_PROGRESS", "1") != "0" and sys.stderr.isatty()


def _provenance(sweep: Sweep, runner, store: SweepStore) -> tuple[dict, dict]:
    """The sweep's provenance and this run's, taken before the first fit (the commit is the
    code that runs; each row also carries the commit of the process that fitted it)."""
    try:
        import ray
        ray_version = ray.__version__ if runner.name == "ray" else None
    except ImportError:
        ray_version = None
    info = {"name": sweep.name, "spec": str(sweep.path.resolve()),
            "spec_sha256": hashlib.sha256(sweep.text.encode()).hexdigest(),
            "spec_text": sweep.text, **({"spec_as_run": sweep.edited} if sweep.edited else {}),
            "fits": len(sweep.fits), "history_format": store.format,
            "key": "a fit's full configuration (every key, defaults filled in) and its "
                   "image's digest"}
    run = {"engine": runner.describe(), "commit": commit(), "torch": torch.__version__,
           "ray": ray_version, "python": platform.python_version(), "driver": platform.node(),
           "started": time.strftime("%FT%T%z")}
    return info, run
