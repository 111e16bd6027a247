"""``dipspec sweep SPEC``: many fits from one spec file, resumable, locally or on Ray.

The output folder holds the sweep's journal, histories, table and provenance
(:mod:`dipspec.experiments.sweep.store`) and a marker saying that a sweep wrote it. It must be
new, empty or a sweep's folder: nothing else is touched. A sweep's folder is reused — that is
how a sweep resumes, and how a changed spec runs only its new fits — and locked while a sweep
runs in it, so two sweeps into one folder refuse each other.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import RunError, UsageError, interrupt_exit_code
from .outputs import MARKER, _lock, _write_json, check_target, read_marker

__all__ = ["check_sweep_folder", "open_sweep_folder", "sweep_command"]

_KIND = "sweep"


def _default_out(spec: str) -> str:
    return str(Path("sweeps") / Path(spec).stem)


def check_sweep_folder(typed: str) -> Path:
    """The sweep's folder, after refusing one that holds anything but a sweep's files."""
    out = Path(os.path.abspath(os.path.expanduser(typed)))
    marker = read_marker(out) if out.is_dir() else None
    if marker is not None and marker.get("kind") != _KIND:
        raise UsageError(f"--out {typed} holds the results of `dipspec run` (or resume), not "
                         "of a sweep; pass another folder")
    return check_target(typed)


def open_sweep_folder(out: Path, typed: str) -> int | None:
    """Create and lock the folder, and mark it as a sweep's; the lock's descriptor."""
    from ..experiments.sweep import OUTPUT_FILES

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {typed}: cannot create the folder ({err.strerror or err}); "
                         "pass a folder you can write to") from err
    free, fd = _lock(out)
    if not free:
        raise UsageError(f"--out {typed}: another sweep is running in that folder; wait for it "
                         "or pass another folder")
    partials = [f".{name}.partial" for name in OUTPUT_FILES]
    for name in partials:  # a killed sweep's temporary files (no sweep runs here now)
        (out / name).unlink(missing_ok=True)
    _write_json(out / MARKER, {"written_by": "dipspec", "kind": _KIND, "state": "sweep",
                               "files": [*OUTPUT_FILES, *partials]})
    return fd


def _only(items: list[str]) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UsageError(f"--only needs KEY=VALUE[,VALUE...], got {item!r}")
        chosen.setdefault(key.strip(), []).extend(v.strip() for v in values.split(","))
    return chosen


def sweep_command(args) -> int:
    """Check the spec, run the missing fits, write the table; print a summary."""
    from ..experiments.sweep import BatchFailed, run_sweep

    only = _only(args.only)
    typed = args.out or _default_out(args.spec)
    out = check_sweep_folder(typed)
    if args.engine != "ray" and args.address:
        raise UsageError("--address joins a Ray cluster; add --engine ray")
    if args.engine == "ray" and args.device != "auto":
        raise UsageError("--device is for --engine local; on Ray every batch gets a GPU when "
                         "the cluster has them, else a CPU")
    lock: list[int | None] = []
    try:
        report = run_sweep(args.spec, out, engine=args.engine, address=args.address,
                           device=args.device, progress=False if args.quiet else None,
                           dry_run=args.dry_run, only=only,
                           echo=lambda line: print(line, flush=True),
                           before_writing=lambda: lock.append(open_sweep_folder(out, typed)))
    except BatchFailed as err:
        raise RunError(f"{err}; the other batches are journalled in {out / 'journal.jsonl'}: "
                       "fix the cause and run the same command again") from err
    except KeyboardInterrupt as stop:
        print(f"dipspec sweep: interrupted; the finished fits are journalled in "
              f"{out / 'journal.jsonl'}: run the same command again to continue",
              file=sys.stderr)
        return interrupt_exit_code(stop)
    finally:
        for fd in lock:
            if fd is not None:
                os.close(fd)
    if not args.dry_run:
        print(report.summary(), flush=True)
    return 0
