"""The notebooks' experiments: configuration, sweeps, findings and summary tables.

The notebooks in ``notebooks/`` hold no logic of their own: each builds a :class:`Setup` with
:func:`configure` (its preset plus the few cost knobs of its ``parameters`` cell), runs the fits
through the helpers here, and prints the findings that :func:`report` formats. Everything here
is plain Python over :func:`dipspec.fit` and :class:`~dipspec.FitResult`; plotting lives in
:mod:`dipspec.plots`, interactive controls in :mod:`dipspec.widgets`.

Peaks are judged on a smoothed PSNR curve (a centred rolling mean over ``setup.smooth``
iterations), because single-iteration PSNR is spiky; FBC values "at" an iteration are the
smoothed bands at the nearest measured iteration.

Examples
--------
>>> setup = configure("lipschitz_control", "quick", device="cpu")
>>> setup.preset.image_size, setup.lambdas, setup.iterations
(64, (1.0, 1.2, 2.0), 2000)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import data, metrics, stopping, tasks
from ._batched import fit_many
from ._fit import FBC_COLUMNS, FitResult, fit
from .models import ConvNet, Decoder, SkipNet
from .presets import Preset, resolve, resolve_device

__all__ = [
    "ARCHITECTURES",
    "FIGURES",
    "OURS",
    "Setup",
    "application_lambda",
    "application_tasks",
    "bands_at",
    "compare_architectures",
    "configure",
    "controlled",
    "denoising_comparison",
    "degraded_view",
    "degraded_views",
    "denoising_task",
    "findings_applications",
    "findings_architecture",
    "findings_gaussian",
    "findings_lipschitz",
    "findings_quickstart",
    "findings_spectral_bias",
    "findings_stopping",
    "fit_model",
    "fit_together",
    "load",
    "make_model",
    "method",
    "peak",
    "plain_dip",
    "psnr_table",
    "report",
    "restore_all",
    "rise_iteration",
    "sigma_sweep_lambda",
    "stop_at",
    "stop_iterations",
    "stop_table",
    "summary",
    "sweep_lambda",
    "sweep_sigma",
]

#: Per-figure defaults for each preset: the images and the iteration count (the paper's on
#: ``paper``; on ``quick`` the smallest run that keeps every finding of the notebook true).
FIGURES: dict[str, dict[str, dict]] = {
    "quickstart": {
        "quick": {"images": ("Peppers",), "iterations": 1000},
        "paper": {"images": ("Peppers",), "iterations": 3000},
    },
    "fbc_noise": {
        "quick": {"images": ("Peppers",), "iterations": 2000},
        "paper": {"images": ("Peppers", "F16", "Lena"), "iterations": 5000},
    },
    "architecture": {
        "quick": {"images": ("Peppers",), "iterations": 600},
        "paper": {"images": ("Peppers",), "iterations": 5000},
    },
    "lipschitz_control": {
        "quick": {"images": ("Peppers",), "iterations": 2000},
        "paper": {"images": ("Peppers",), "iterations": 10000},
    },
    "gaussian_control": {
        "quick": {"images": ("Peppers",), "iterations": 1500},
        "paper": {"images": ("Peppers",), "iterations": 10000},
    },
    "automatic_stop": {
        "quick": {"images": ("Peppers",), "iterations": 3000},
        "paper": {"images": ("Peppers", "F16", "Lena"), "iterations": 10000},
    },
    "applications": {
        "quick": {"images": ("F16",), "iterations": 2000, "task_iterations": 500},
        "paper": {"images": ("Baboon", "F16", "House"), "iterations": 20000,
                  "task_iterations": 10000},
    },
}

#: The architectures of the architecture notebook: label → (model kind, input code).
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "DIP encoder–decoder": ("skip", "noise"),
    "decoder": ("decoder", "fourier"),
    "ConvNet without upsampling": ("convnet", "fourier"),
}

#: The label of the controlled decoder in the applications.
OURS = "ours (λ control)"

_SHORT_NAMES = {
    "baboon": "denoising/image_Baboon512rgb.png",
    "f16": "denoising/image_F16_512rgb.png",
    "house": "denoising/image_House256rgb.png",
    "lena": "denoising/image_Lena512rgb.png",
    "peppers": "denoising/image_Peppers512rgb.png",
    "tulips": "enhancement/tulips.bmp",
    "vase": "inpainting/vase.png",
    "library": "inpainting/library.png",
}


@dataclass(frozen=True)
class Setup:
    """Everything a notebook's runs depend on, resolved from its ``parameters`` cell.

    Attributes
    ----------
    figure : str
        The paper figure (a key of :data:`FIGURES`), also the saved figure's name.
    preset : Preset
        The run scale, with the notebook's ``image_size`` / ``channels`` overrides applied.
    images : tuple of str
        Image names for :func:`load`.
    iterations : int
        Iterations of each fit.
    lambdas, sigmas : tuple of float
        The (over-smooth, right, decaying) λ triple and the σ sweep of this scale.
    metrics_every : int
        Iterations between FBC / blur-sharpness evaluations.
    smooth : int
        Window (iterations) of the centred rolling mean that peaks are judged on.
    seed : int
    device : torch.device
    extra : dict
        Figure-specific knobs (e.g. ``task_iterations`` of the applications).
    """

    figure: str
    preset: Preset
    images: tuple[str, ...]
    iterations: int
    lambdas: tuple[float, ...]
    sigmas: tuple[float, ...]
    metrics_every: int
    smooth: int
    seed: int
    device: torch.device
    extra: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int | None:
        return self.preset.image_size

    @property
    def gaussian_lambda(self) -> float:
        """λ of the σ sweep's convolutions (the preset's; the paper's σ figure is λ-controlled)."""
        return self.preset.gaussian_lambda

    @property
    def lipschitz_lambda(self) -> float:
        """The denoising λ of this scale (the preset's; "ours" in the applications)."""
        return self.preset.lipschitz_lambda

    def provenance(self, results=None, **extra) -> dict:
        """Provenance for :func:`dipspec.plots.save_figure` (preset, sizes, seed, commit, time)."""
        from .plots import provenance

        flat = _flatten(results)
        # Members of one fit_many batch all report the batch's wall time: count it once.
        wall = {"wall_time_s": round(sum({r.wall_time for r in flat}), 1)} if flat else {}
        return provenance(self.preset, flat, figure=self.figure, channels=self.preset.channels,
                          images=list(self.images), metrics_every=self.metrics_every,
                          **wall, **extra)


def _flatten(results) -> list[FitResult]:
    """Fit results out of a list, a mapping, or a mapping of mappings (image → method → fit)."""
    if results is None:
        return []
    values = results.values() if isinstance(results, Mapping) else results
    flat: list[FitResult] = []
    for value in values:
        flat.extend(_flatten(value) if isinstance(value, Mapping) else [value])
    return flat


def configure(figure: str, preset: str | Preset = "auto", *, images: Sequence[str] | None = None,
              image_size: int | None = None, channels: int | None = None,
              iterations: int | None = None, lambdas: Sequence[float] | None = None,
              sigmas: Sequence[float] | None = None, metrics_every: int | None = None,
              task_iterations: int | None = None, seed: int = 0,
              device: str | torch.device = "auto") -> Setup:
    """Resolve a notebook's parameters into a :class:`Setup`; ``None`` means "preset default".

    Parameters
    ----------
    figure : str
        A key of :data:`FIGURES` (``"fbc_noise"``, ``"lipschitz_control"``, …).
    preset : {"auto", "quick", "paper"} or Preset
        ``"auto"`` is ``paper`` on a GPU and ``quick`` on a CPU.
    images, image_size, channels, iterations, lambdas, sigmas, metrics_every
        Overrides of the preset's (and the figure's) defaults.
    task_iterations : int, optional
        Iteration cap of each application's restoration (``"applications"`` only).
    seed : int
    device : {"auto", "cpu", "cuda", ...}

    Raises
    ------
    ValueError
        For an unknown figure or preset.
    """
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; choose one of {sorted(FIGURES)}")
    run_device = resolve_device(device)
    scale = resolve(preset, run_device)
    changes = {key: value for key, value in
               (("image_size", image_size), ("channels", channels)) if value is not None}
    if changes:
        scale = scale.with_(**changes)
    defaults = FIGURES[figure]["paper" if scale.name == "paper" else "quick"]
    iterations = int(iterations or defaults["iterations"])
    if metrics_every is None:
        metrics_every = 5 if scale.name != "paper" else 10
    extra = {key: value for key, value in defaults.items() if key not in ("images", "iterations")}
    if task_iterations is not None:
        extra["task_iterations"] = int(task_iterations)
    return Setup(
        figure=figure, preset=scale, images=tuple(images or defaults["images"]),
        iterations=iterations,
        lambdas=tuple(float(v) for v in (lambdas or scale.lipschitz_lambdas)),
        sigmas=tuple(float(v) for v in (sigmas or scale.gaussian_sigmas)),
        metrics_every=int(metrics_every), smooth=max(10, iterations // 100), seed=int(seed),
        device=run_device, extra=extra,
    )


# --------------------------------------------------------------------------------------------
# images and tasks
# --------------------------------------------------------------------------------------------


def _paper_path(name: str) -> str | None:
    key = name.lower()
    if key in _SHORT_NAMES:
        return _SHORT_NAMES[key]
    if name in data.paper_registry():
        return name
    matches = [p for p in data.paper_images() if key in p.rsplit("/", 1)[-1].lower()]
    return matches[0] if matches else None


def load(name: str, size: int | None = None, gray: bool = False) -> torch.Tensor:
    """An image by short name: a paper image (``"Peppers"``, ``"F16"``, ``"tulips"``, or any
    path of :func:`dipspec.data.paper_images`) or an embedded one (``"astronaut"``).

    Paper images come from ``$DIPSPEC_DATA_MIRROR`` when set, else a verified download.

    Examples
    --------
    >>> load("camera", size=32).shape
    torch.Size([1, 1, 32, 32])
    """
    if name in data.EMBEDDED_IMAGES:
        return data.load_image(name, gray=gray, size=size)
    relpath = _paper_path(name)
    if relpath is None:
        raise ValueError(f"unknown image {name!r}; use a paper image ({', '.join(_SHORT_NAMES)}, "
                         f"or a path from dipspec.data.paper_images()) or an embedded one "
                         f"({', '.join(data.EMBEDDED_IMAGES[:4])}, …)")
    return data.paper_image(relpath, gray=gray, size=size)


def denoising_task(name: str, setup: Setup, noise_sigma: float = 25.0) -> tasks.Denoise:
    """The paper's denoising task (σ in 8-bit units, 25 by default) on image ``name``."""
    clean = load(name, setup.image_size)
    return tasks.Denoise(noise_sigma / 255.0, clean=clean, seed=setup.seed)


def _region_mask(name: str, size: int | None) -> torch.Tensor:
    """A region mask resized and cropped exactly like its image (then thresholded at ½)."""
    mask = data.paper_mask(f"inpainting/{name}_mask.png")
    if size is None:
        return mask
    resized = data._array_to_tensor(mask[0, 0].numpy(), gray=True, size=size)
    return (resized > 0.5).to(torch.float32)


def application_tasks(setup: Setup) -> dict[str, tasks.Task]:
    """The paper's applications at this scale, labelled (SPEC §8).

    Denoising (σ 25, F16 colour), JPEG deblocking (quality 10, classic5 Barbara grey), inpainting
    with a Bernoulli(½) mask (Barbara; the shipped mask at full size, a drawn one when resized)
    and with a region mask (vase), super-resolution ×4 (House) and detail enhancement (tulips).
    """
    size, seed = setup.image_size, setup.seed
    barbara = "inpainting/Dataset_Bernoulli/img/barbara.png"
    bernoulli = (tasks.Inpaint(data.paper_mask(barbara), clean=load(barbara), seed=seed)
                 if size is None else tasks.Inpaint(keep=0.5, clean=load(barbara, size), seed=seed))
    return {
        "denoising": tasks.Denoise(25 / 255, clean=load("F16", size), seed=seed),
        "JPEG deblocking": tasks.Deblock(10, clean=load("deblocking/classic5/barbara.bmp", size),
                                         seed=seed),
        "inpainting (Bernoulli)": bernoulli,
        "inpainting (region)": tasks.Inpaint(_region_mask("vase", size),
                                             clean=load("vase", size), seed=seed),
        "super-resolution ×4": tasks.SuperResolve(4, clean=load("House", size), seed=seed),
        "detail enhancement": tasks.Enhance(clean=load("tulips", size), seed=seed),
    }


def degraded_views(task_list: Mapping[str, tasks.Task]) -> dict[str, torch.Tensor]:
    """:func:`degraded_view` of every task, by label."""
    return {label: degraded_view(task) for label, task in task_list.items()}


def method(runs: Mapping[str, Mapping[str, FitResult]], name: str) -> dict[str, FitResult]:
    """One method's results out of ``{image: {method: result}}`` (e.g. ``"plain DIP"``)."""
    return {image: methods[name] for image, methods in runs.items()}


def degraded_view(task: tasks.Task) -> torch.Tensor:
    """The observation at the clean image's size, for display and PSNR (bicubic for SR)."""
    observation = task.observation
    height, width = task.output_size
    if observation.shape[-2:] == (height, width):
        return observation
    upsampled = torch.nn.functional.interpolate(observation, size=(height, width),
                                                mode="bicubic", align_corners=False)
    return upsampled.clamp(0, 1)


# --------------------------------------------------------------------------------------------
# models and fits
# --------------------------------------------------------------------------------------------


def make_model(kind: str, setup: Setup, out_channels: int, *,
               lipschitz_lambda: float | None = None, upsample: str = "bilinear",
               gaussian_sigma: float | Sequence[float] | None = None) -> nn.Module:
    """A network at the setup's width: ``"decoder"``, ``"convnet"`` or ``"skip"`` (DIP).

    ``lipschitz_lambda=None`` is plain DIP; ``gaussian_sigma`` applies to ``upsample="gaussian"``
    (default: the paper's per-stage σ).
    """
    channels, seed = setup.preset.channels, setup.seed
    if kind == "decoder":
        options = {} if gaussian_sigma is None else {"gaussian_sigma": gaussian_sigma}
        return Decoder(out_channels=out_channels, channels=channels,
                       lipschitz_lambda=lipschitz_lambda, upsample=upsample, seed=seed, **options)
    if kind == "convnet":
        return ConvNet(out_channels=out_channels, channels=channels,
                       lipschitz_lambda=lipschitz_lambda, seed=seed)
    if kind == "skip":
        return SkipNet(out_channels=out_channels, channels=channels, seed=seed)
    raise ValueError(f"unknown model kind {kind!r}; choose 'decoder', 'convnet' or 'skip'")


def _progress(iterations: int, progress: bool, setup: Setup):
    """``(callbacks, bar, fit's progress flag)``: on a CPU this module's slow bar.

    The fit's own bar refreshes ten times a second; a minute-long cell then sends thousands of
    widget messages, which overflow the queue of a client that reads them only when the cell
    ends (nbval) and lose the cell's end. This bar refreshes at most once a second. On a GPU
    the fit's own bar is kept (a callback would make every iteration wait for the device).
    """
    if not (progress and setup.device.type == "cpu"):
        return [], None, progress
    from tqdm.auto import tqdm

    bar = tqdm(total=iterations, desc="fit", leave=False, mininterval=1.0)

    def advance(info: dict) -> None:  # returns None: a True would end the fit
        bar.update(info["iteration"] + 1 - bar.n)

    return [advance], bar, False


def fit_model(task: tasks.Task, model: nn.Module, setup: Setup, *, iterations: int | None = None,
              input_kind: str = "fourier", auto_stop: bool = False, progress: bool = True,
              callbacks: Iterable[Callable[[dict], bool | None]] = (),
              metrics_every: int | None = None) -> FitResult:
    """:func:`dipspec.fit` with the setup's iterations, seed, device and metric cadence."""
    iterations = iterations or setup.iterations
    extra, bar, own = _progress(iterations, progress, setup)
    try:
        return fit(task, model=model, iterations=iterations, seed=setup.seed,
                   device=setup.device, preset=setup.preset, input_kind=input_kind,
                   metrics_every=setup.metrics_every if metrics_every is None else metrics_every,
                   auto_stop=auto_stop, callbacks=[*callbacks, *extra], progress=own)
    finally:
        if bar is not None:
            bar.close()


def fit_together(task_list: Sequence[tasks.Task], models: Sequence[nn.Module], setup: Setup, *,
                 progress: bool = True) -> list[FitResult]:
    """Fit ``models[k]`` to ``task_list[k]`` side by side with :func:`dipspec.fit_many`.

    The models share an architecture (λ and σ may differ); tasks of different sizes run in
    one batch per size. Each member is the fit :func:`fit_model` would make, up to float
    rounding. One model is a plain fit.
    """
    if len(models) == 1:
        return [fit_model(task_list[0], models[0], setup, progress=progress)]
    shapes = {(task.output_size, tuple(task.observation.shape)) for task in task_list}
    if len(shapes) > 1:  # fit_many needs one size: batch each size apart
        groups: dict[tuple, list[int]] = {}
        for k, task in enumerate(task_list):
            groups.setdefault((task.output_size, tuple(task.observation.shape)), []).append(k)
        results: list[FitResult | None] = [None] * len(task_list)
        for members in groups.values():
            fitted = fit_together([task_list[k] for k in members], [models[k] for k in members],
                                  setup, progress=progress)
            for k, result in zip(members, fitted, strict=True):
                results[k] = result
        return results
    extra, bar, own = _progress(setup.iterations, progress, setup)
    try:
        return fit_many(list(task_list), list(models), iterations=setup.iterations,
                        seeds=setup.seed, device=setup.device, preset=setup.preset,
                        metrics_every=setup.metrics_every, callbacks=extra, progress=own)
    finally:
        if bar is not None:
            bar.close()


def sweep_lambda(task: tasks.Task, setup: Setup, lambdas: Sequence[float] | None = None,
                 plain: bool = True, progress: bool = True) -> dict[str, FitResult]:
    """Fit the decoder for each λ (then plain DIP, when ``plain``), side by side; keys
    ``"λ = 1.2"``, …, ``"plain DIP"``."""
    chosen = {f"λ = {lam:g}": lam for lam in (lambdas or setup.lambdas)}
    if plain:
        chosen["plain DIP"] = None
    models = [make_model("decoder", setup, task.channels, lipschitz_lambda=lam)
              for lam in chosen.values()]
    results = fit_together([task] * len(models), models, setup, progress=progress)
    return dict(zip(chosen, results, strict=True))


def sweep_sigma(task: tasks.Task, setup: Setup, sigmas: Sequence[float] | None = None,
                lipschitz_lambda: float | str | None = "preset",
                progress: bool = True) -> dict[str, FitResult]:
    """Fit the Gaussian-upsampling decoder for each σ (the same σ at every stage), side by
    side; keys ``"σ = 0.5"``, …

    ``lipschitz_lambda`` is the λ of the convolutions: ``"preset"`` (default) is
    :attr:`Setup.gaussian_lambda`, as in the paper's figure; ``None`` lets σ act alone.
    """
    sigmas = tuple(sigmas or setup.sigmas)
    lipschitz_lambda = sigma_sweep_lambda(setup, lipschitz_lambda)
    models = [make_model("decoder", setup, task.channels, lipschitz_lambda=lipschitz_lambda,
                         upsample="gaussian", gaussian_sigma=sigma) for sigma in sigmas]
    results = fit_together([task] * len(models), models, setup, progress=progress)
    return {f"σ = {sigma:g}": result for sigma, result in zip(sigmas, results, strict=True)}


def sigma_sweep_lambda(setup: Setup, lipschitz_lambda: float | str | None) -> float | None:
    """Resolve the σ sweep's λ: ``"preset"`` → :attr:`Setup.gaussian_lambda`."""
    if isinstance(lipschitz_lambda, str):
        if lipschitz_lambda != "preset":
            raise ValueError(f"lipschitz_lambda must be a number, None or 'preset', got "
                             f"{lipschitz_lambda!r}")
        return setup.gaussian_lambda
    return lipschitz_lambda


def _denoising_fits(setup: Setup, lambdas: Sequence[float | None],
                    progress: bool) -> list[dict[str, FitResult]]:
    """For each λ (``None``: plain DIP), the decoder on every setup image, all side by side."""
    denoise = [denoising_task(name, setup) for name in setup.images]
    pairs = [(task, lam) for lam in lambdas for task in denoise]
    models = [make_model("decoder", setup, task.channels, lipschitz_lambda=lam)
              for task, lam in pairs]
    results = iter(fit_together([task for task, _ in pairs], models, setup, progress=progress))
    return [{name: next(results) for name in setup.images} for _ in lambdas]


def plain_dip(setup: Setup, progress: bool = True) -> dict[str, FitResult]:
    """Plain DIP (the decoder without control) on the denoising task of each setup image."""
    return _denoising_fits(setup, [None], progress)[0]


def controlled(setup: Setup, lipschitz_lambda: float | None = None,
               progress: bool = True) -> dict[str, FitResult]:
    """The λ-controlled decoder on the denoising task of each setup image (run to the end;
    ``stop_iteration`` says where the automatic stop fires)."""
    return _denoising_fits(setup, [lipschitz_lambda or setup.lipschitz_lambda], progress)[0]


def denoising_comparison(setup: Setup, progress: bool = True) -> dict[str, dict[str, FitResult]]:
    """Per image: ours (the λ-controlled decoder) and plain DIP, both run to the end."""
    ours, plain = _denoising_fits(setup, [setup.lipschitz_lambda, None], progress)
    return {name: {OURS: ours[name], "plain DIP": plain[name]} for name in setup.images}


def application_lambda(task: tasks.Task, setup: Setup) -> float:
    """λ of an application: the scale's denoising λ for denoising and deblocking (SPEC §3 uses
    1.4 for both), the task's own otherwise (inpainting 1.6, enhancement 1.0)."""
    if task.name in ("denoise", "deblock"):
        return setup.lipschitz_lambda
    return task.default_lipschitz_lambda


def restore_all(task_list: Mapping[str, tasks.Task], setup: Setup,
                progress: bool = True) -> dict[str, FitResult]:
    """Fit the controlled decoder to every task, each for ``min(task's iterations,
    setup.extra["task_iterations"])`` iterations (detail enhancement: its 100)."""
    budget = int(setup.extra.get("task_iterations", setup.iterations))
    return {label: fit_model(task, make_model("decoder", setup, task.channels,
                                              lipschitz_lambda=application_lambda(task, setup)),
                             setup, iterations=min(task.default_iterations, budget),
                             progress=progress)
            for label, task in task_list.items()}


def compare_architectures(task: tasks.Task, setup: Setup,
                          progress: bool = True) -> dict[str, FitResult]:
    """Plain DIP encoder–decoder, decoder and ConvNet without upsampling (:data:`ARCHITECTURES`)."""
    return {label: fit_model(task, make_model(kind, setup, task.channels), setup,
                             input_kind=code, progress=progress)
            for label, (kind, code) in ARCHITECTURES.items()}


# --------------------------------------------------------------------------------------------
# reading results
# --------------------------------------------------------------------------------------------


def _rows(result: FitResult, window: int) -> int:
    """A smoothing window in iterations as a number of history rows."""
    iterations = result.history["iteration"].to_numpy()
    step = float(np.median(np.diff(iterations))) if len(iterations) > 1 else 1.0
    return max(1, round(window / max(step, 1.0)))


def peak(result: FitResult, smooth: int) -> tuple[int, float]:
    """``(iteration, dB)`` of the peak of the PSNR curve smoothed over ``smooth`` iterations."""
    return result.peak("psnr", _rows(result, smooth))


def _final(result: FitResult, smooth: int) -> float:
    return float(result.curve("psnr", _rows(result, smooth)).iloc[-1])


def _psnr_at(result: FitResult, iteration: int, smooth: int) -> float:
    curve = result.curve("psnr", _rows(result, smooth))
    return float(curve.iloc[int(np.abs(curve.index.to_numpy() - iteration).argmin())])


def rise_iteration(result: FitResult, smooth: int, within: float = 1.0) -> int:
    """First iteration at which the smoothed PSNR comes within ``within`` dB of its peak.

    A convergence time that, unlike the peak's iteration, stays put when a curve is still
    creeping up at the end of the run.
    """
    curve = result.curve("psnr", _rows(result, smooth))
    reached = (curve >= curve.max() - within).to_numpy()
    return int(curve.index[int(reached.argmax())])


def bands_at(result: FitResult, iteration: int, smooth: int = 1) -> pd.Series:
    """The five FBC bands at the measured iteration nearest to ``iteration``, each smoothed by a
    centred rolling mean over ``smooth`` iterations."""
    history = result.history
    if "fbc_1" not in history or history["fbc_1"].isna().all():
        raise ValueError("this fit measured no FBC; fit it with metrics_every >= 1")
    measured = history.dropna(subset=["fbc_1"]).set_index("iteration")[list(FBC_COLUMNS)]
    step = float(np.median(np.diff(measured.index))) if len(measured) > 1 else 1.0
    rows = max(1, round(smooth / max(step, 1.0)))
    smoothed = measured.rolling(rows, center=True, min_periods=1).mean()
    return smoothed.iloc[int(np.abs(smoothed.index.to_numpy() - iteration).argmin())]


def _last_iteration(result: FitResult) -> int:
    return int(result.history["iteration"].iloc[-1])


def summary(results: Mapping[str, FitResult], smooth: int) -> pd.DataFrame:
    """Per run: peak iteration and PSNR, final PSNR, drop, and the FBC bands at the peak and end.

    PSNR values are read from the curve smoothed over ``smooth`` iterations.
    """
    rows = {}
    for label, result in results.items():
        peak_it, peak_db = peak(result, smooth)
        final = _final(result, smooth)
        row = {"peak iteration": peak_it, "peak PSNR": peak_db, "final PSNR": final,
               "drop (dB)": peak_db - final}
        if "fbc_1" in result.history:
            at_peak = bands_at(result, peak_it, smooth)
            at_end = bands_at(result, _last_iteration(result), smooth)
            row.update({f"{col} @peak": float(at_peak[col]) for col in FBC_COLUMNS})
            row.update({f"{col} @end": float(at_end[col]) for col in FBC_COLUMNS})
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(3)


def psnr_table(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """PSNR of the degraded input, the restoration at the end and the oracle best, per task."""
    rows = {}
    for label, result in results.items():
        task = result.task
        if task.clean is None or task.name == "enhance":
            continue
        clean = task.clean.cpu()
        rows[label] = {
            "degraded": float(metrics.psnr(degraded_view(task).cpu(), clean)[0]),
            "restored": float(metrics.psnr(result.output, clean)[0]),
            "best (oracle)": float(metrics.psnr(result.best, clean)[0]),
            "iterations": _last_iteration(result) + 1,
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def stop_at(result: FitResult, window: int = 100, eps: float = 0.01) -> int | None:
    """Where the stopping rule (SPEC §6) fires on a fit's logged ratios for window n and ε."""
    measured = result.history.dropna(subset=["ratio"])
    # copies: pandas hands out read-only arrays, which torch.as_tensor warns about
    return stopping.first_stop_iteration(np.array(measured["ratio"]), window=window, eps=eps,
                                         iterations=np.array(measured["iteration"]))


def stop_iterations(results: Mapping[str, FitResult], window: int = 100,
                    eps: float = 0.01) -> dict[str, int | None]:
    """:func:`stop_at` of every run, by label (``None`` where the rule never fires)."""
    return {label: stop_at(result, window, eps) for label, result in results.items()}


def stop_table(results: Mapping[str, FitResult], smooth: int, window: int = 100,
               eps: float = 0.01) -> pd.DataFrame:
    """The automatic stop against running to the end, per run.

    Columns: the stop iteration, the iterations run, the iterations saved by stopping, the
    (smoothed) PSNR at the stop and at the end, the PSNR lost by stopping (end − stop; negative
    means stopping was better) and the oracle's peak PSNR.
    """
    rows = {}
    for label, result in results.items():
        stop = stop_at(result, window, eps)
        end = _last_iteration(result)
        at_stop = math.nan if stop is None else _psnr_at(result, stop, smooth)
        at_end = _final(result, smooth)
        rows[label] = {
            "stop iteration": stop if stop is not None else pd.NA,
            "iterations": end + 1,
            "iterations saved": (end - stop) if stop is not None else 0,
            "PSNR at stop": at_stop,
            "PSNR at end": at_end,
            "PSNR lost (dB)": at_end - at_stop,
            "peak PSNR": peak(result, smooth)[1],
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


# --------------------------------------------------------------------------------------------
# findings: named booleans, each with a margin
# --------------------------------------------------------------------------------------------


def _booleans(function):
    """Findings are plain ``bool`` (numpy's ``np.True_`` prints the same but compares oddly)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> dict[str, bool]:
        return {name: bool(value) for name, value in function(*args, **kwargs).items()}

    return wrapper


def report(findings: Mapping[str, bool]) -> None:
    """Print each finding as ``name: True`` (what the notebooks' checked cells show)."""
    for name, value in findings.items():
        print(f"{name}: {bool(value)}")


@_booleans
def findings_quickstart(result: FitResult, smooth: int) -> dict[str, bool]:
    """The controlled decoder restores: > 3 dB over the noisy input and no decay (< 0.5 dB)."""
    clean = result.task.clean.cpu()
    noisy = float(metrics.psnr(result.task.observation.cpu(), clean)[0])
    restored = float(metrics.psnr(result.output, clean)[0])
    peak_db = peak(result, smooth)[1]
    return {
        "the restoration beats the noisy input by more than 3 dB": restored > noisy + 3.0,
        "the controlled decoder ends within 0.5 dB of its peak": peak_db - _final(
            result, smooth) < 0.5,
    }


@_booleans
def findings_spectral_bias(results: Mapping[str, FitResult], smooth: int) -> dict[str, bool]:
    """Plain DIP on denoising (SPEC §5, fbc_noise.png), every image."""
    peaks = {label: peak(r, smooth) for label, r in results.items()}
    at_peak = {label: bands_at(r, peaks[label][0], smooth) for label, r in results.items()}
    return {
        "plain DIP peaks before the last iteration and ends > 1 dB below its peak": all(
            peaks[k][0] < _last_iteration(r) and peaks[k][1] - _final(r, smooth) > 1.0
            for k, r in results.items()),
        "lowest band >= 0.9 at the PSNR peak": all(b["fbc_1"] >= 0.9 for b in at_peak.values()),
        "highest band <= 0.5 at the PSNR peak": all(b["fbc_5"] <= 0.5 for b in at_peak.values()),
        "bands at the peak fall from low to high frequency": all(
            bool(np.all(np.diff(b.to_numpy()) < 0)) for b in at_peak.values()),
        "the highest band rises by > 0.1 after the peak (the noise is fitted)": all(
            bands_at(r, _last_iteration(r), smooth)["fbc_5"] > at_peak[k]["fbc_5"] + 0.1
            for k, r in results.items()),
    }


@_booleans
def findings_architecture(results: Mapping[str, FitResult], smooth: int) -> dict[str, bool]:
    """Upsampling imposes the bias: without it the ConvNet fits high frequencies (and noise) first.
    """
    decoder, convnet = results["decoder"], results["ConvNet without upsampling"]
    dip = results["DIP encoder–decoder"]
    decoder_peak = peak(decoder, smooth)
    top_decoder = bands_at(decoder, decoder_peak[0], smooth)["fbc_5"]
    top_convnet = bands_at(convnet, decoder_peak[0], smooth)["fbc_5"]
    return {
        "at the decoder's peak the ConvNet's highest band is > 0.2 above the decoder's":
            top_convnet > top_decoder + 0.2,
        "the ConvNet peaks before the decoder": peak(convnet, smooth)[0] < decoder_peak[0],
        "the decoder peaks > 0.5 dB higher than the ConvNet without upsampling":
            decoder_peak[1] > peak(convnet, smooth)[1] + 0.5,
        "the DIP encoder–decoder also decays after its peak (> 1 dB)": peak(
            dip, smooth)[1] - _final(dip, smooth) > 1.0,
    }


@_booleans
def findings_lipschitz(results: Mapping[str, FitResult], lambdas: Sequence[float],
                       smooth: int) -> dict[str, bool]:
    """λ controls the bias (SPEC §3, lipschitz_control.png): over-smooth / right / decaying."""
    small, right, large = (results[f"λ = {lam:g}"] for lam in lambdas)
    plain = results["plain DIP"]
    plain_peak = peak(plain, smooth)[1]
    end = {k: bands_at(r, _last_iteration(r), smooth)["fbc_5"] for k, r in results.items()}
    ordered = [end[f"λ = {lam:g}"] for lam in lambdas]
    return {
        "the right λ ends within 0.5 dB of its peak": peak(right, smooth)[1] - _final(
            right, smooth) < 0.5,
        "the right λ ends > 1 dB above plain DIP": _final(right, smooth) > _final(
            plain, smooth) + 1.0,
        "the smallest λ never reaches plain DIP's peak (over-smoothing)":
            peak(small, smooth)[1] < plain_peak,
        "the largest λ decays like plain DIP (> 1 dB below its peak)": peak(
            large, smooth)[1] - _final(large, smooth) > 1.0,
        "the highest band at the end grows with λ": bool(np.all(np.diff(ordered) > 0)),
    }


@_booleans
def findings_gaussian(results: Mapping[str, FitResult], sigmas: Sequence[float],
                      smooth: int) -> dict[str, bool]:
    """σ controls the bias (SPEC §4, gaussian_control.png): the smallest σ converges first but
    ends lowest, the middle σ ends highest, and the bands at the end fall as σ grows.

    ``sigmas`` in increasing order (the paper's 0, 0.5, 1).
    """
    runs = [results[f"σ = {sigma:g}"] for sigma in sigmas]
    peak_at = [peak(r, smooth)[0] for r in runs]
    final = [_final(r, smooth) for r in runs]
    end = [bands_at(r, _last_iteration(r), smooth) for r in runs]
    high = [f"fbc_{band}" for band in (3, 4, 5)]
    return {
        "the smallest σ peaks first (fastest convergence)": all(
            peak_at[0] < other for other in peak_at[1:]),
        "the smallest σ ends lowest, the middle σ highest (as in the paper)": (
            final[0] == min(final) and final[len(final) // 2] == max(final)),
        "the high bands (3–5) at the end fall as σ grows (larger σ, smoother output)": all(
            a[col] > b[col] for a, b in zip(end, end[1:]) for col in high),
    }


@_booleans
def findings_stopping(results: Mapping[str, FitResult], smooth: int, window: int = 100,
                      eps: float = 0.01) -> dict[str, bool]:
    """The automatic stop (SPEC §6, automatic_stop.png) with λ control, every image."""
    table = stop_table(results, smooth, window, eps)
    fired = table["stop iteration"].notna()
    return {
        "auto-stop fires before the last iteration": bool(fired.all() and (
            table["iterations saved"] > 0).all()),
        "auto-stop PSNR within 0.5 dB of the final PSNR": bool(
            fired.all() and (table["PSNR lost (dB)"].abs() < 0.5).all()),
    }


@_booleans
def findings_applications(denoising: Mapping[str, Mapping[str, FitResult]],
                          restorations: Mapping[str, FitResult], smooth: int) -> dict[str, bool]:
    """Controlled vs plain DIP on denoising (applications.png); every restoration helps."""
    ours = list(method(denoising, OURS).values())
    plain = list(method(denoising, "plain DIP").values())
    table = psnr_table(restorations)
    return {
        "ours ends within 0.5 dB of its peak, every image": all(
            peak(r, smooth)[1] - _final(r, smooth) < 0.5 for r in ours),
        "plain DIP ends > 1 dB below its peak, every image": all(
            peak(r, smooth)[1] - _final(r, smooth) > 1.0 for r in plain),
        "ours ends above plain DIP, every image": all(
            _final(o, smooth) > _final(p, smooth) for o, p in zip(ours, plain, strict=True)),
        "every restoration beats its degraded input by > 0.3 dB": bool(
            (table["restored"] > table["degraded"] + 0.3).all()),
    }
