"""A precomputed grid of denoising fits — image × λ × upsampling × σ — saved to one file, so that
an explorer (:func:`dipspec.viz.widgets.grid_explorer`, the Voilà lesson) scrubs every
control instantly.

:func:`precompute_grid` fits the grid with :func:`dipspec.fit_many` (one batch per image and
upsampling mode, every λ and σ side by side), keeping the outputs at log-spaced iterations for
the iteration scrubber. :meth:`Grid.save` writes one compressed ``.npz`` (no pickles: arrays and
one JSON string) with a provenance JSON beside it; :func:`load_grid` reads it back as
:class:`~dipspec.FitResult` objects. The quick preset's default grid (one image, 16 fits of
2000 iterations) takes a few minutes on a 2-core CPU.

Examples
--------
>>> key = GridKey("camera", 1.2, "gaussian", 0.5)
>>> describe(key)
'camera, λ = 1.2, gaussian σ = 0.5'
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .. import tasks
from ..fitting import FitResult, log_spaced_iterations
from ..nn import UPSAMPLE_MODES
from .provenance import provenance
from .runs import fit_model, fit_together
from .setup import Setup, configure, denoising_task, make_model

__all__ = ["GRID_FORMAT", "LESSON_GRID", "Grid", "GridKey", "describe", "grid_keys",
           "lesson_grid", "load_grid", "precompute_grid"]

#: The file format's version, written into every grid file.
GRID_FORMAT = 1
#: The grid the Voilà lesson opens on (``dipspec teach --precompute`` makes it; committed).
LESSON_GRID = Path(__file__).resolve().parents[2] / "results" / "teach" / "grid.npz"


class GridKey(NamedTuple):
    """One point of a grid. ``lipschitz_lambda`` 0 is plain DIP; ``gaussian_sigma`` is 0
    unless ``upsample`` is ``"gaussian"``."""

    image: str
    lipschitz_lambda: float
    upsample: str
    gaussian_sigma: float

    @classmethod
    def of(cls, image: str, lipschitz_lambda: float | None, upsample: str = "bilinear",
           gaussian_sigma: float | None = None) -> GridKey:
        """A key with its numbers rounded to 0.01 (how the sliders and the cache see them)."""
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"unknown upsampling {upsample!r}; choose one of "
                             f"{list(UPSAMPLE_MODES)}")
        sigma = round(float(gaussian_sigma or 0.0), 2) if upsample == "gaussian" else 0.0
        return cls(str(image), round(float(lipschitz_lambda or 0.0), 2), upsample, sigma)


def describe(key: GridKey, image: bool = True) -> str:
    """A key in words: ``"camera, λ = 1.2, gaussian σ = 0.5"``, ``"plain DIP, bilinear"``."""
    words = [key.image] if image else []
    words.append(f"λ = {key.lipschitz_lambda:g}" if key.lipschitz_lambda else "plain DIP")
    if key.upsample == "gaussian":
        words.append(f"gaussian σ = {key.gaussian_sigma:g}")
    elif key.upsample != "bilinear":
        words.append(key.upsample)
    return ", ".join(words)


def grid_keys(images: Sequence[str], lambdas: Sequence[float],
              upsamplings: Sequence[str] = ("bilinear", "gaussian"),
              sigmas: Sequence[float] = (0.0, 0.5, 1.0)) -> list[GridKey]:
    """Every point of image × λ × upsampling (× σ for ``"gaussian"``), in that order."""
    if not images or not lambdas or not upsamplings:
        raise ValueError("a grid needs at least one image, one λ and one upsampling mode")
    keys = []
    for image in images:
        for mode in upsamplings:
            for lam in lambdas:
                for sigma in (sigmas if mode == "gaussian" else (0.0,)):
                    keys.append(GridKey.of(image, lam, mode, sigma))
    return list(dict.fromkeys(keys))


def grid_model(key: GridKey, setup: Setup, channels: int):
    """The decoder of one grid point at the setup's width."""
    return make_model("decoder", setup, channels, lipschitz_lambda=key.lipschitz_lambda or None,
                      upsample=key.upsample,
                      gaussian_sigma=key.gaussian_sigma if key.upsample == "gaussian" else None)


@dataclass
class Grid:
    """Fits by :class:`GridKey`, with the settings that made them.

    Attributes
    ----------
    results : dict of GridKey → FitResult
        A loaded grid's results carry no model (weights are not saved); their ``snapshots`` are
        8-bit images at the kept iterations.
    settings : dict
        ``preset``, ``image_size``, ``channels``, ``iterations``, ``metrics_every``, ``seed``,
        ``noise_sigma``, ``figure``.
    """

    results: dict[GridKey, FitResult]
    settings: dict
    _setup: Setup | None = field(default=None, repr=False)

    def values(self, name: str, image: str | None = None) -> list:
        """The sorted values of one key field (``"lipschitz_lambda"``, …), optionally for one
        image (σ only over the Gaussian points)."""
        keys = [k for k in self.results if image is None or k.image == image]
        if name == "gaussian_sigma":
            keys = [k for k in keys if k.upsample == "gaussian"]
        return sorted({getattr(k, name) for k in keys})

    @property
    def setup(self) -> Setup:
        """The setup of refits off the grid (same scale, seed and metric cadence)."""
        if self._setup is None:
            s = self.settings
            self._setup = configure(s["figure"], s["preset"], images=self.values("image"),
                                    image_size=s["image_size"], channels=s["channels"],
                                    iterations=s["iterations"], seed=s["seed"],
                                    metrics_every=s["metrics_every"])
        return self._setup

    def task(self, image: str) -> tasks.Denoise:
        """The denoising task of ``image`` (the grid's own observation when it has one)."""
        for key, result in self.results.items():
            if key.image == image:
                return result.task
        return denoising_task(image, self.setup, self.settings["noise_sigma"])

    def fit(self, key: GridKey, callbacks=(), keep: int = 16,
            iterations: int | None = None) -> FitResult:
        """Fit one point (off the grid, say) as the grid's were fitted (``iterations``:
        default the grid's)."""
        task = self.task(key.image)
        iterations = iterations or self.settings["iterations"]
        return fit_model(task, grid_model(key, self.setup, task.channels), self.setup,
                         iterations=iterations, callbacks=callbacks, progress=False,
                         keep_outputs=log_spaced_iterations(iterations, keep))

    def save(self, path: str | Path) -> Path:
        """Write the grid to ``path`` (``.npz``, compressed) and its provenance beside it
        (``.json``); each file is written whole, then moved into place."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"a grid file ends in .npz, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays, members = {}, []
        for image in self.values("image"):
            task = self.task(image)
            arrays[f"clean/{image}"] = task.clean.detach().cpu().float().numpy()
            arrays[f"observation/{image}"] = task.observation.detach().cpu().float().numpy()
        for index, (key, result) in enumerate(self.results.items()):
            kept = sorted(result.snapshots)
            members.append({"key": list(key), "kept": kept,
                            "columns": list(result.history.columns),
                            "stop_iteration": result.stop_iteration,
                            "wall_time": result.wall_time})
            arrays[f"history/{index}"] = result.history.to_numpy(dtype=np.float64)
            arrays[f"output/{index}"] = _to_bytes(result.output)
            arrays[f"snapshots/{index}"] = np.stack(
                [_to_bytes(result.snapshots[it]) for it in kept]) if kept else np.zeros(0)
        meta = {"format": GRID_FORMAT, "settings": self.settings, "members": members}
        arrays["meta"] = np.array(json.dumps(meta))
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez_compressed(partial, **arrays)
        os.replace(partial, path)
        info = provenance(self.settings["preset"], self.results, grid=path.name,
                          points=len(self.results), settings=self.settings)
        sidecar = path.with_suffix(".json")
        partial_json = sidecar.with_name(f".{sidecar.name}.partial")
        partial_json.write_text(json.dumps(info, indent=2, default=str) + "\n")
        os.replace(partial_json, sidecar)
        return path


def _to_bytes(image: torch.Tensor) -> np.ndarray:
    """An image in [0, 1] as 8-bit pixels (what the scrubber shows; 4× lighter than float)."""
    return (image.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _from_bytes(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / 255.0)


def load_grid(path: str | Path) -> Grid:
    """Read a grid written by :meth:`Grid.save`.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path`` (with how to make one).
    ValueError
        If the file is not a dipspec grid, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no grid file at {path}; make one with "
                                "dipspec.experiments.precompute_grid(setup).save(path)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a dipspec grid file ({err})") from None
    if meta.get("format") != GRID_FORMAT:
        raise ValueError(f"{path} is a grid of format {meta.get('format')}; this dipspec reads "
                         f"format {GRID_FORMAT} — precompute it again")
    settings = meta["settings"]
    made = {}
    for name in {m["key"][0] for m in meta["members"]}:
        made[name] = tasks.Denoise(settings["noise_sigma"] / 255.0,
                                   clean=torch.from_numpy(arrays[f"clean/{name}"]),
                                   observation=torch.from_numpy(arrays[f"observation/{name}"]))
    results = {}
    for index, member in enumerate(meta["members"]):
        key = GridKey(*member["key"])
        history = pd.DataFrame(arrays[f"history/{index}"], columns=member["columns"])
        history["iteration"] = history["iteration"].astype(np.int64)
        shots = arrays[f"snapshots/{index}"]
        results[key] = FitResult(
            output=_from_bytes(arrays[f"output/{index}"]), best=None, history=history,
            stop_iteration=member["stop_iteration"], task=made[key.image], model=None,
            snapshots={it: _from_bytes(shots[i]) for i, it in enumerate(member["kept"])},
            wall_time=member["wall_time"])
    return Grid(results, settings)


def lesson_grid(path: str | Path | None = None) -> Grid:
    """The lesson's grid: ``path``, else ``$DIPSPEC_TEACH_GRID`` (set by ``dipspec teach
    --grid``), else the committed :data:`LESSON_GRID`."""
    return load_grid(path or os.environ.get("DIPSPEC_TEACH_GRID") or LESSON_GRID)


def precompute_grid(setup: Setup, images: Sequence[str] | None = None,
                    lambdas: Sequence[float] | None = None,
                    upsamplings: Sequence[str] = ("bilinear", "gaussian"),
                    sigmas: Sequence[float] | None = None, noise_sigma: float = 25.0,
                    keep: int = 16, progress: bool = True) -> Grid:
    """Fit image × λ × upsampling × σ for denoising (σ_noise = ``noise_sigma`` / 255), with
    :func:`dipspec.fit_many`, one batch per image and upsampling mode.

    Parameters
    ----------
    setup : Setup
        Scale, iterations, seed and device (:func:`dipspec.experiments.configure`).
    images : sequence of str, optional
        Default: the setup's first image.
    lambdas : sequence of float, optional
        Default: plain DIP (0) and the setup's λ triple.
    upsamplings : sequence of str
        Modes of :data:`dipspec.nn.UPSAMPLE_MODES`; σ applies to ``"gaussian"``.
    sigmas : sequence of float, optional
        Default: the setup's σ sweep.
    keep : int
        About how many log-spaced outputs each fit keeps (the iteration scrubber's frames).
    """
    images = list(images or setup.images[:1])
    lambdas = list(lambdas if lambdas is not None else (0.0, *setup.lambdas))
    keys = grid_keys(images, lambdas, upsamplings, sigmas if sigmas is not None else setup.sigmas)
    kept = log_spaced_iterations(setup.iterations, keep)
    results: dict[GridKey, FitResult] = {}
    for image in images:
        task = denoising_task(image, setup, noise_sigma)
        for mode in upsamplings:  # one grouped network per architecture
            batch = [k for k in keys if k.image == image and k.upsample == mode]
            fitted = fit_together([task] * len(batch),
                                  [grid_model(k, setup, task.channels) for k in batch], setup,
                                  progress=progress, keep_outputs=kept)
            results.update(zip(batch, fitted, strict=True))
    settings = {"figure": setup.figure, "preset": setup.preset.name,
                "image_size": setup.image_size, "channels": setup.preset.channels,
                "iterations": setup.iterations, "metrics_every": setup.metrics_every,
                "seed": setup.seed, "noise_sigma": float(noise_sigma)}
    return Grid(results, settings, setup)
