"""Fits of the Shi et al. reproductions: one fit, side-by-side fits, and the notebooks' sweeps.

:func:`fit_model` is :func:`dipspec.fit` with a :class:`~dipspec.experiments.Setup`'s
iterations, seed, device and metric cadence; :func:`fit_together` runs several members side by
side with :func:`dipspec.fit_many`. The sweeps (λ, σ), the denoising runs (plain DIP, controlled,
both) and the applications build on those two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from torch import nn

from .. import tasks
from ..fitting import FitResult, fit, fit_many
from ..presets import default_lambda
from .setup import ARCHITECTURES, OURS, Setup, denoising_task, make_model

__all__ = [
    "application_lambda",
    "compare_architectures",
    "controlled",
    "denoising_comparison",
    "fit_model",
    "fit_together",
    "plain_dip",
    "restore_all",
    "sigma_sweep_lambda",
    "sweep_lambda",
    "sweep_sigma",
]


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
              metrics_every: int | None = None, keep_outputs: Sequence[int] = ()) -> FitResult:
    """:func:`dipspec.fit` with the setup's iterations, seed, device and metric cadence
    (``keep_outputs``: the iterations whose outputs the result keeps, as in ``fit``)."""
    iterations = iterations or setup.iterations
    extra, bar, own = _progress(iterations, progress, setup)
    try:
        return fit(task, model=model, iterations=iterations, seed=setup.seed,
                   device=setup.device, preset=setup.preset, input_kind=input_kind,
                   metrics_every=setup.metrics_every if metrics_every is None else metrics_every,
                   auto_stop=auto_stop, callbacks=[*callbacks, *extra], progress=own,
                   keep_outputs=keep_outputs)
    finally:
        if bar is not None:
            bar.close()


def fit_together(task_list: Sequence[tasks.Task], models: Sequence[nn.Module], setup: Setup, *,
                 progress: bool = True, keep_outputs: Sequence[int] = ()) -> list[FitResult]:
    """Fit ``models[k]`` to ``task_list[k]`` side by side with :func:`dipspec.fit_many`.

    The models share an architecture (λ and σ may differ); tasks of different sizes run in
    one batch per size. Each member is the fit :func:`fit_model` would make, up to float
    rounding. One model is a plain fit.
    """
    if len(models) == 1:
        return [fit_model(task_list[0], models[0], setup, progress=progress,
                          keep_outputs=keep_outputs)]
    shapes = {(task.output_size, tuple(task.observation.shape)) for task in task_list}
    if len(shapes) > 1:  # fit_many needs one size: batch each size apart
        groups: dict[tuple, list[int]] = {}
        for k, task in enumerate(task_list):
            groups.setdefault((task.output_size, tuple(task.observation.shape)), []).append(k)
        results: list[FitResult | None] = [None] * len(task_list)
        for members in groups.values():
            fitted = fit_together([task_list[k] for k in members], [models[k] for k in members],
                                  setup, progress=progress, keep_outputs=keep_outputs)
            for k, result in zip(members, fitted, strict=True):
                results[k] = result
        return results
    extra, bar, own = _progress(setup.iterations, progress, setup)
    try:
        return fit_many(list(task_list), list(models), iterations=setup.iterations,
                        seeds=setup.seed, device=setup.device, preset=setup.preset,
                        metrics_every=setup.metrics_every, callbacks=extra, progress=own,
                        keep_outputs=keep_outputs)
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


def _denoising_fits(setup: Setup, lambdas: Sequence[float | None], progress: bool,
                    keep_outputs: Sequence[int] = ()) -> list[dict[str, FitResult]]:
    """For each λ (``None``: plain DIP), the decoder on every setup image, all side by side."""
    denoise = [denoising_task(name, setup) for name in setup.images]
    pairs = [(task, lam) for lam in lambdas for task in denoise]
    models = [make_model("decoder", setup, task.channels, lipschitz_lambda=lam)
              for task, lam in pairs]
    results = iter(fit_together([task for task, _ in pairs], models, setup, progress=progress,
                                keep_outputs=keep_outputs))
    return [{name: next(results) for name in setup.images} for _ in lambdas]


def plain_dip(setup: Setup, progress: bool = True,
              keep_outputs: Sequence[int] = ()) -> dict[str, FitResult]:
    """Plain DIP (the decoder without control) on the denoising task of each setup image;
    ``keep_outputs``: iterations whose outputs each result keeps (the iteration scrubber's,
    :func:`dipspec.fitting.log_spaced_iterations`)."""
    return _denoising_fits(setup, [None], progress, keep_outputs)[0]


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
    """λ of an application: :func:`dipspec.presets.default_lambda` at the setup's scale (the
    scale's denoising λ for denoising and deblocking, the paper's otherwise)."""
    return default_lambda(task, setup.preset)


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
