"""``dipspec run`` and ``dipspec resume``: fit, checkpoint, and write what exists.

A run writes into its staging folder (:mod:`~dipspec.cli.outputs`): ``run.json`` first (the
command and its arguments, ``"status": "running"``), the fit's checkpoint every N iterations,
then the results, and swaps the folder into place. Ctrl-C or SIGTERM stops the fit at the end of
an iteration: the history so far, the current and best outputs and ``run.json``
(``"status": "partial"``, with the iteration) are written with the checkpoint, and
``dipspec resume DIR`` continues from there — or from the staging folder a SIGKILL left.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from .. import __version__, data
from .errors import (
    EXIT_FAILURE,
    RunError,
    UsageError,
    deferred_signals,
    interrupt_exit_code,
    one_line,
)
from .inputs import plan_run
from .outputs import CHECKPOINT, OutputFolder, open_output, read_marker

__all__ = ["CHECKPOINT", "resume_command", "run_command"]

RUN_JSON = "run.json"
_STORED_ARGS = ("task", "image", "synthetic", "observed", "mask", "size", "noise_sigma",
                "quality", "factor", "lipschitz_lambda", "upsample", "gaussian_sigma",
                "channels", "iterations", "preset", "auto_stop", "stop_rule", "seed", "device",
                "precision", "channels_last", "out", "checkpoint_every")


def run_command(args) -> int:
    """``dipspec run``: check everything, then fit into a staging folder and publish it."""
    plan = plan_run(args)
    folder = open_output(args.out, plan.inputs)
    try:
        return _start_run(args, plan, folder)
    except BaseException:
        folder.fail()  # nothing published: no staging folder left, unless it can be resumed
        raise


def _start_run(args, plan, folder: OutputFolder) -> int:
    import torch

    from ..fitting import fit

    record = {"status": "running", "command": shlex.join(["dipspec", *args.argv]),
              "headline": plan.headline, "iterations": plan.iterations,
              "args": {k: getattr(args, k) for k in _STORED_ARGS}, "dipspec": __version__}
    print(plan.headline, flush=True)
    if folder.cleaned:
        plan.notes.append(f"removed the staging folder of an unfinished run into {args.out} "
                          f"(dipspec resume {shlex.quote(args.out)} would have continued it)")
    for note in plan.notes:
        print(note, flush=True)
    for warning in plan.warnings:
        print(f"dipspec: warning: {warning}", file=sys.stderr, flush=True)

    def start(checkpoint: Path, every: int | None):
        torch.manual_seed(args.seed)
        return fit(plan.task, model=plan.model, iterations=plan.iterations, seed=args.seed,
                   device=plan.device, preset=plan.preset, auto_stop=args.auto_stop,
                   stop_rule=getattr(args, "stop_rule", None),
                   progress=not args.quiet, checkpoint=checkpoint, checkpoint_every=every,
                   precision=args.precision, channels_last=args.channels_last)

    return _execute(folder, record, start, args.checkpoint_every)


def resume_command(args) -> int:
    """``dipspec resume DIR``: continue the stopped run whose ``--out`` was DIR."""
    from ..fitting import resume

    folder = open_output(args.dir, label="DIR", resume=True)
    source = folder.staging / CHECKPOINT
    try:
        if folder.resumed and source.is_file():  # killed: the staging folder holds the state
            record = json.loads((folder.staging / RUN_JSON).read_text())
        else:
            folder.reset()
            source, record = _stopped_run(folder)
    except BaseException:
        folder.fail()
        raise
    every = args.checkpoint_every or record.get("args", {}).get("checkpoint_every")
    record = {**record, "status": "running"}
    done = record.get("iteration")
    since = "" if done is None else f" after iteration {done} of {record.get('iterations')}"
    print(f"resuming{since}: {record.get('headline', folder.out)}", flush=True)

    def start(checkpoint: Path, every: int | None):
        return resume(source, progress=not args.quiet, save_to=checkpoint,
                      checkpoint_every=every)

    return _execute(folder, record, start, every)


def _stopped_run(folder: OutputFolder) -> tuple[Path, dict]:
    """The checkpoint and record of a run stopped by Ctrl-C or SIGTERM (published partial)."""
    where = f"DIR {folder.typed}"
    marker = read_marker(folder.out) if folder.out.is_dir() else None
    if marker is None:
        raise UsageError(f"{where}: no dipspec run to resume there (a run stopped before its "
                         "first checkpoint starts again with dipspec run)")
    try:
        record = json.loads((folder.out / RUN_JSON).read_text())
    except (OSError, ValueError):
        raise UsageError(f"{where}: its {RUN_JSON} is missing or unreadable; start the run "
                         "again with dipspec run") from None
    if record.get("status") != "partial":
        raise UsageError(f"{where}: the run there is {record.get('status')}, nothing to resume; "
                         "start a new one with dipspec run")
    if not (folder.out / CHECKPOINT).is_file():
        raise UsageError(f"{where}: the run there stopped before its first checkpoint; start it "
                         "again with dipspec run")
    return folder.out / CHECKPOINT, record


def _execute(folder: OutputFolder, record: dict, start, every: int | None) -> int:
    """Fit (``start(checkpoint, every)``), then publish complete, partial or diverged results."""
    from ..fitting import FitDiverged, FitInterrupted

    published = False
    try:
        _write_json(folder.staging / RUN_JSON, record)
        try:
            result = start(folder.staging / CHECKPOINT, every)
        except FitInterrupted as stop:
            if stop.result is None:
                print("dipspec: interrupted before the first iteration; nothing written",
                      file=sys.stderr)
                return interrupt_exit_code(stop)
            resumable = (folder.staging / CHECKPOINT).is_file()
            _finish(folder, stop.result, record, "partial", iteration=stop.iteration)
            published = True
            then = (f"continue with: dipspec resume {shlex.quote(folder.typed)}" if resumable
                    else "no checkpoint yet to continue from")
            print(f"dipspec: interrupted ({stop.reason}) after iteration {stop.iteration} of "
                  f"{record['iterations']}; partial results in {folder.out}; {then}",
                  file=sys.stderr)
            return interrupt_exit_code(stop)
        except FitDiverged as err:
            _finish(folder, err.result, record, "diverged", iteration=err.iteration)
            published = True
            print(f"dipspec: error: {one_line(err)}; the best output so far is in {folder.out}",
                  file=sys.stderr)
            return EXIT_FAILURE
        except MemoryError as err:
            raise RunError("out of memory during the fit; pass a smaller --size, fewer "
                           "--channels or fewer --iterations") from err
        except (RuntimeError, OSError) as err:
            raise RunError(f"the fit failed: {one_line(err)}") from err
        _finish(folder, result, record, "complete")
        published = True
    finally:
        if not published:
            folder.fail()
    _summary(folder, result, record)
    return 0


def _finish(folder: OutputFolder, result, record: dict, status: str,
            iteration: int | None = None) -> None:
    """Write the results into the staging folder and swap it into place."""
    with deferred_signals():
        try:
            _write_results(folder.staging, result, {
                **record, "status": status, "iteration": iteration,
                "wall_time_s": round(result.wall_time, 2), "device": result.device})
            if status != "partial":
                (folder.staging / CHECKPOINT).unlink(missing_ok=True)
        except OSError as err:
            raise RunError(f"--out {folder.typed}: could not write the results "
                           f"({one_line(err)})") from err
    folder.publish(status)


def _write_results(staging: Path, result, record: dict) -> None:
    task = result.task
    data.save_image(result.output, staging / "output.png")
    data.save_image(task.observation, staging / "observation.png")
    if result.best is not None:
        data.save_image(result.best, staging / "best.png")
    result.history.to_csv(staging / "history.csv", index=False)
    _summary_figure(result, task).savefig(staging / "psnr.png", dpi=110, bbox_inches="tight")
    if task.clean is not None and len(result.history):
        record["final_psnr"] = round(float(result.history["psnr"].iloc[-1]), 4)
    _write_json(staging / RUN_JSON, record)


def _write_json(path: Path, info: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str) + "\n")
    tmp.replace(path)


def _summary_figure(result, task):
    from matplotlib.figure import Figure

    from ..viz import plots

    has_clean = task.clean is not None
    fig = Figure(figsize=(12, 3))
    axes = fig.subplots(1, 4 if has_clean else 3)
    images = {"observation": task.observation, "restored": result.output}
    if has_clean:
        images["clean"] = task.clean
    plots.show_images(images, axes=axes[: len(images)])
    if has_clean:
        plots.plot_psnr({"fit": result}, ax=axes[-1], mark_stop=result.stop_iteration is not None)
    else:
        axes[-1].plot(result.history["iteration"], result.history["loss"])
        axes[-1].set(xlabel="iteration", ylabel="loss", yscale="log")
    fig.tight_layout()
    return fig


def _summary(folder: OutputFolder, result, record: dict) -> None:
    history = result.history
    final = history.iloc[-1] if len(history) else None
    psnr = (f"final PSNR {final['psnr']:.2f} dB, " if final is not None
            and result.task.clean is not None else "")
    print(f"{psnr}{len(history)} logged iterations in {result.wall_time:.0f} s on "
          f"{result.device}; results in {folder.out}", flush=True)

