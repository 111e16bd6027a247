"""Fits recorded for later study: the journal row of a fit and its per-iteration trajectory.

The ladder, the λ-robustness runs and the stopping study (issues 14, 15) all record fits the
same way (:func:`record_fits`): a group of fits batched with :func:`dipspec.fit_many`, each
finished fit one line of a :class:`FitJournal` (:func:`summarise`) and one ``.npz`` of its
trajectory: PSNR, loss, the five FBC bands, blurriness, sharpness and their ratio, and the two
output-variance curves of Wang et al.'s rules (ES-WMV's windowed variance, ES-EMV's exponential
one), recorded while the fit runs because they need the output images. A stop rule can then be
judged on these curves without another fit.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import tasks
from ..data import estimate_noise_sigma
from ..fitting import FitInterrupted, FitResult, fit_many, resume
from ..fitting.checkpoint import read_checkpoint
from ..measure import ESEMV, ESWMV, first_stop_iteration
from ..nn import Decoder
from ..presets import Preset
from .chakrabarty.tables import FitJournal, machine, results_path
from .provenance import commit

__all__ = ["CHECKPOINT_EVERY", "CURVE_EVERY", "NOISE_ESTIMATE", "SMOOTH", "TRAJECTORY_COLUMNS",
           "RecordedFit", "journal_rows", "label", "load_trajectory", "markdown_table",
           "read_result_table", "record_fits", "recorded", "summarise", "write_texts",
           "write_trajectory"]

#: A long group of fits (the wide scale: hours on a CPU) checkpoints this often (iterations),
#: so that it survives the end of a session: the same command continues it.
CHECKPOINT_EVERY = 250
#: Every this many iterations the PSNR curve is kept in the journal, for the figure.
CURVE_EVERY = 10
#: Smoothing of the PSNR curve for the smoothed peak and end (as the notebooks read curves).
SMOOTH = 50


def label(lipschitz_lambda: float | None) -> str:
    return "plain" if lipschitz_lambda is None else f"{lipschitz_lambda:g}"


def summarise(result, lipschitz_lambda: float | None) -> dict:
    """One journal row of a fit: raw and smoothed peak and end, decay, where the paper's stop
    rule (SPEC §6) fires and its PSNR there, wall time, and the PSNR curve every
    :data:`CURVE_EVERY` iterations."""
    history = result.history
    psnr = history["psnr"].to_numpy()
    iterations = history["iteration"].to_numpy()
    peak = int(np.nanargmax(psnr))
    ratios = history.dropna(subset=["ratio"])
    stop = first_stop_iteration(ratios["ratio"].to_numpy().copy(), window=100, eps=0.01,
                                iterations=ratios["iteration"].to_numpy().copy())
    stop_psnr = None if stop is None else float(psnr[np.searchsorted(iterations, stop)])
    return {"lambda": label(lipschitz_lambda), "peak_psnr": float(psnr[peak]),
            "peak_iteration": int(iterations[peak]), "final_psnr": float(psnr[-1]),
            "decay_db": float(psnr[peak] - psnr[-1]), "stop_iteration": stop,
            "stop_psnr": stop_psnr, "wall_time_s": round(result.wall_time, 1),
            # the history has a row per iteration, so SMOOTH rows are SMOOTH iterations
            "smooth_peak_iteration": int(result.peak("psnr", SMOOTH)[0]),
            "smooth_peak_psnr": float(result.peak("psnr", SMOOTH)[1]),
            "smooth_final_psnr": float(result.curve("psnr", SMOOTH).iloc[-1]),
            "curve": [round(float(v), 3) for v in psnr[::CURVE_EVERY]]}


#: Per-iteration columns of a trajectory file (beside ``iteration``).
TRAJECTORY_COLUMNS = ("psnr", "loss", "fbc_1", "fbc_2", "fbc_3", "fbc_4", "fbc_5",
                      "blurriness", "sharpness", "ratio", "wmv", "emv")
#: The key of the observation's estimated noise σ in a trajectory file (a scalar).
NOISE_ESTIMATE = "noise_sigma_estimate"
#: Wang et al.'s settings (their reference code); the patience is applied afterwards.
WMV_WINDOW, EMV_ALPHA = 100, 0.1


class _VarianceRecorder:
    """A fit callback: feeds every member's output to ES-WMV and ES-EMV rules that never fire,
    and keeps their variance at every iteration.

    With ``snapshots`` (a path prefix) and ``every``, its state is saved after every ``every``
    completed iterations — where the fit writes its checkpoints — as ``PREFIX.recorder-N.pt``
    (N completed; the last two kept, since the fit's checkpoint may lag by one), so that a
    resumed fit continues the curves exactly (:meth:`restore`).
    """

    def __init__(self, members: int, snapshots: Path | None = None,
                 every: int | None = None) -> None:
        never = 1 << 40
        self.wmv = [ESWMV(window=WMV_WINDOW, patience=never) for _ in range(members)]
        self.emv = [ESEMV(alpha=EMV_ALPHA, patience=never, burn_in=0) for _ in range(members)]
        self.curves = [{"wmv": [], "emv": []} for _ in range(members)]
        self.snapshots, self.every = snapshots, every

    def __call__(self, info: dict) -> None:
        m, it, out = info["member"], info["iteration"], info["output"]
        self.wmv[m].update(it, out)
        self.emv[m].update(it, out)
        for name, rule in (("wmv", self.wmv[m]), ("emv", self.emv[m])):
            value = rule.variance if name == "wmv" else rule.emv
            self.curves[m][name].append(math.nan if value is None else float(value))
        if self.snapshots and self.every and m == len(self.wmv) - 1 and (
                (it + 1) % self.every == 0):
            self._save(it + 1)

    def _path(self, completed: int) -> Path:
        return self.snapshots.with_name(f"{self.snapshots.name}.recorder-{completed}.pt")

    def _save(self, completed: int) -> None:
        state = {"wmv": [r.state_dict() for r in self.wmv],
                 "emv": [r.state_dict() for r in self.emv], "curves": self.curves}
        target = self._path(completed)
        partial = target.with_name(f".{target.name}.partial")
        torch.save(state, partial)
        os.replace(partial, target)
        for old in self.snapshots.parent.glob(f"{self.snapshots.name}.recorder-*.pt"):
            if int(old.stem.rsplit("-", 1)[1]) < completed - self.every:
                old.unlink()

    def restore(self, completed: int) -> None:
        """Put back the state saved after ``completed`` iterations."""
        state = torch.load(self._path(completed), weights_only=False)
        for rules, saved in ((self.wmv, state["wmv"]), (self.emv, state["emv"])):
            for rule, rule_state in zip(rules, saved, strict=True):
                rule.load_state_dict(rule_state)
        self.curves = state["curves"]

    def discard(self) -> None:
        """Remove the saved states (the fit has finished)."""
        if self.snapshots:
            for old in self.snapshots.parent.glob(f"{self.snapshots.name}.recorder-*.pt"):
                old.unlink()


def _save_trajectory(path: Path, result, curves: dict) -> None:
    """The per-iteration trajectory as a compressed ``.npz`` (float32), written atomically,
    with the noise level estimated from the fit's observation (for the discrepancy rule)."""
    history = result.history
    arrays = {"iteration": history["iteration"].to_numpy(np.int32)}
    for column in TRAJECTORY_COLUMNS:
        values = curves[column] if column in curves else history[column].to_numpy()
        arrays[column] = np.asarray(values, dtype=np.float32)
    arrays[NOISE_ESTIMATE] = np.float64(estimate_noise_sigma(result.task.observation))
    write_trajectory(path, arrays)


def write_trajectory(path: str | Path, arrays: dict) -> None:
    """Write a trajectory's arrays as a compressed ``.npz``, atomically."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)


def load_trajectory(path: str | Path) -> pd.DataFrame:
    """A trajectory file as a DataFrame (``iteration`` and :data:`TRAJECTORY_COLUMNS`); the
    observation's estimated noise level is in ``frame.attrs["noise_sigma_estimate"]``."""
    with np.load(path) as arrays:
        frame = pd.DataFrame({name: arrays[name] for name in arrays.files
                              if arrays[name].ndim == 1})
        if NOISE_ESTIMATE in arrays.files:
            frame.attrs[NOISE_ESTIMATE] = float(arrays[NOISE_ESTIMATE])
    return frame


@dataclass
class RecordedFit:
    """A finished fit read back from its journal row and trajectory (:func:`recorded`): the
    per-iteration ``history`` that the figures and findings read, without the output image or
    the network. ``curve`` and ``peak`` are :class:`~dipspec.fitting.FitResult`'s."""

    history: pd.DataFrame
    stop_iteration: int | None = None
    wall_time: float = 0.0
    source: str = ""

    curve = FitResult.curve
    peak = FitResult.peak


def recorded(journal: FitJournal, key: dict) -> RecordedFit | None:
    """The fit journalled under ``key`` as a :class:`RecordedFit`, or ``None`` if it has not
    finished (or was journalled without a trajectory)."""
    row = journal.get(key)
    if row is None or not row.get("trajectory"):
        return None
    path = journal.path.parent / row["trajectory"]
    stop = row.get("stop_iteration")
    return RecordedFit(history=load_trajectory(path),
                       stop_iteration=None if stop is None else int(stop),
                       wall_time=float(row.get("wall_time_s") or 0.0), source=str(path))


def record_fits(out: str | Path, journal: FitJournal, task: tasks.Task,
                todo: Sequence[tuple[float | None, dict]], seed: int, preset: Preset,
                steps: int, device, progress: bool, prefix: str, channels: int | None = None,
                precision: str | None = None, checkpoint_every: int | None = None,
                model_options: Sequence[dict] | None = None,
                names: Sequence[str] | None = None) -> None:
    """Fit ``task`` once per (λ, journal key) in ``todo``, batched with :func:`fit_many`.

    The decoders have ``channels`` (default the preset's width), the given λ and, per fit, the
    :class:`~dipspec.nn.Decoder` options in ``model_options`` (e.g. ``{"upsample": "gaussian",
    "gaussian_sigma": 0.5}``); the loop follows ``preset``. Each fit is journalled under its key
    and its trajectory saved as ``OUT/trajectories/PREFIX_NAME.npz`` (``NAME``: ``names``, by
    default the λ label). With ``checkpoint_every``, the group checkpoints
    into ``OUT/checkpoints/`` every so many iterations (fit and recorder together) and a later
    call with the same fits continues from there — long fits survive the end of a session.
    """
    out = Path(out)
    names = list(names or [label(lam) for lam, _ in todo])
    recorder = _VarianceRecorder(len(todo))
    print(f"[{time.strftime('%H:%M:%S')}] {prefix}: {', '.join(names)}, {steps} iterations",
          flush=True)
    checkpoint = None
    if checkpoint_every:
        checkpoint = out / "checkpoints" / f"{prefix}.pt"
        recorder = _VarianceRecorder(len(todo), checkpoint.with_suffix(""), checkpoint_every)
        keys = checkpoint.with_suffix(".keys.json")
        wanted = json.dumps([key for _, key in todo], sort_keys=True)
        if checkpoint.is_file() and keys.is_file() and keys.read_text() == wanted:
            completed = int(read_checkpoint(checkpoint)["state"].next)
            recorder.restore(completed)
            print(f"  continuing from its checkpoint after {completed} iterations", flush=True)
            results = _recording(recorder, lambda: resume(checkpoint, callbacks=[recorder],
                                                          progress=progress))
            _journal(out, journal, todo, results, recorder, prefix, names)
            _discard(checkpoint, recorder)
            return
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        keys.write_text(wanted)
    options = list(model_options or [{} for _ in todo])
    models = [Decoder(out_channels=task.observation.shape[1],
                      channels=channels or preset.channels, lipschitz_lambda=lam, seed=seed,
                      **extra) for (lam, _), extra in zip(todo, options, strict=True)]
    results = _recording(recorder, lambda: fit_many(
        [task] * len(todo), models, seeds=[seed] * len(todo), iterations=steps, device=device,
        preset=preset, precision=precision, callbacks=[recorder], progress=progress,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every))
    _journal(out, journal, todo, results, recorder, prefix, names)
    if checkpoint is not None:
        _discard(checkpoint, recorder)


def _recording(recorder: _VarianceRecorder, run):
    """``run()``; on Ctrl-C the fit saves its state where it stopped, between two periodic
    checkpoints, so the recorder saves its curves there too (the resume restores both)."""
    try:
        return run()
    except FitInterrupted as stop:
        if stop.checkpoint and recorder.snapshots:
            recorder._save(stop.iteration + 1)
        raise


def _journal(out: Path, journal: FitJournal, todo, results, recorder, prefix: str,
             names: Sequence[str]) -> None:
    for m, ((lam, key), result, suffix) in enumerate(zip(todo, results, names, strict=True)):
        name = f"{prefix}_{suffix}.npz"
        _save_trajectory(out / "trajectories" / name, result, recorder.curves[m])
        journal.add(key, {**summarise(result, lam), "trajectory": f"trajectories/{name}",
                          "commit": commit(), "machine": machine()})


def _discard(checkpoint: Path, recorder: _VarianceRecorder) -> None:
    """The group is journalled: its checkpoint, key list and recorder states go."""
    checkpoint.unlink(missing_ok=True)
    checkpoint.with_suffix(".keys.json").unlink(missing_ok=True)
    recorder.discard()


def markdown_table(table: pd.DataFrame) -> str:
    """A table as Markdown (empty cells for missing values), for the studies' ``.md`` files."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_texts(stem: str | Path, texts: dict[str, str]) -> None:
    """Write ``STEM + suffix`` for each suffix → text, each atomically (a partial file, then a
    rename), creating the folder."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in texts.items():
        target = stem.with_suffix(suffix)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text)
        os.replace(partial, target)


def read_result_table(path: str | Path, command: str) -> pd.DataFrame:
    """A study's CSV (λ as text): a path, or the stem of a committed table in ``results/``;
    a missing one names ``command``, which writes it."""
    path = Path(path)
    if not path.suffix:
        path = results_path(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; run `{command}` first")
    return pd.read_csv(path, dtype={"lambda": str})


def journal_rows(journal_path: str | Path) -> pd.DataFrame:
    """The finished fits of a journal as a table (one row per fit, no curves)."""
    rows = []
    for line in Path(journal_path).read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a line torn by a crash
            continue
        rows.append({**entry["fit"], **{k: v for k, v in entry["row"].items() if k != "curve"}})
    return pd.DataFrame(rows)


