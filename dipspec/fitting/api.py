"""The two faces of the engine: :func:`fit` (one member) and :func:`fit_many` (K members).

Both check and resolve their arguments here, once, then hand the same :class:`Settings` to
:func:`~dipspec.fitting.engine.run`; they add no behaviour of their own.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from .._checks import as_batched_image
from ..measure import StopRule, ratio_defined
from ..nn import Decoder
from ..presets import Preset, default_lambda, resolve, resolve_device
from ..tasks import Denoise, Task
from .checkpoint import read_checkpoint
from .engine import Settings, run
from .grouped import check_groupable
from .interrupts import FitDiverged
from .result import METRIC_COLUMNS, FitResult
from .stops import resolve_stop_rules, rule_name

__all__ = ["PRECISIONS", "fit", "fit_many", "resume"]

#: Arithmetic of the network's forward pass: float32 (the dtype), or bfloat16 autocast.
PRECISIONS = ("fp32", "bf16")


def fit(task_or_observation, model: nn.Module | None = None, iterations: int | None = None,
        lr: float = 1e-3, seed: int = 0, device: str | torch.device = "auto",
        callbacks: Iterable[Callable[[dict], bool | None]] = (), *,
        preset: str | Preset = "auto", input_kind: str = "fourier",
        reg_noise_std: float = 0.0, ema: float | None = None,
        backtracking: bool | None = None, backtrack_every: int = 10,
        log_every: int = 1, metrics_every: int = 1, auto_stop: bool = False,
        stop_window: int = 100, stop_eps: float = 0.01, stop_rule: str | StopRule | None = None,
        keep_outputs: Sequence[int] = (), progress: bool | None = None,
        dtype: torch.dtype = torch.float32, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None, precision: str | None = None,
        channels_last: bool | None = None) -> FitResult:
    """Fit a deep image prior to one degraded image.

    Minimises ``mean((A f_θ(z) − y)²)`` with Adam (SPEC §1), logging the band meter (FBC), the
    blur/sharpness ratio and PSNR on the device as it goes.

    Parameters
    ----------
    task_or_observation : Task or Tensor
        A task from :mod:`dipspec.tasks` (with ``clean=`` or ``observation=``), or a degraded
        image tensor (fitted with the identity operator, no PSNR).
    model : nn.Module, optional
        Default: the paper's :class:`~dipspec.models.Decoder` at the preset's width with the
        task's λ (``task.default_lipschitz_lambda``). Pass ``Decoder(lipschitz_lambda=None)``
        for plain DIP. The model's ``input_shape(H, W)`` sizes the code ``z``; a model with a
        ``pixel_batch`` attribute (``ReLUNet``) trains on that many random pixels per step.
    iterations : int, optional
        Default: the task's own count (100 for enhancement) capped by the preset's.
    lr : float
        Adam learning rate (1e-3, as the paper).
    seed : int
        Seeds the default model, the code ``z`` and the input perturbation.
    device : {"auto", "cpu", "cuda", ...}
    callbacks : iterable of callables
        Each is called at every logged iteration with a dict holding the row's values plus
        ``"output"`` (the current output on the device) and ``"iterations"``; a callback that
        returns ``True`` ends the fit.
    preset : {"auto", "quick", "paper"} or Preset
        Sets the default width and iteration count.
    input_kind : {"fourier", "noise", "meshgrid"}
    reg_noise_std : float
        Std of the Gaussian perturbation added to ``z`` every step (Ulyanov et al.: 1/30).
    ema : float, optional
        Exponential averaging of outputs (Ulyanov et al.: 0.99); adds ``psnr_avg``.
    backtracking : bool, optional
        Restore the last good weights and Adam moments when PSNR against the observation drops
        by more than 5 dB (SPEC §7). Default: the task's (denoising, deblocking).
    backtrack_every : int
        Iterations between backtracking checks (each check is device-side, no host sync).
    log_every : int
        Iterations between history rows (0: only the last iteration).
    metrics_every : int
        Iterations between evaluations of FBC and the blur/sharpness ratio (0: never); the
        windows of the stopping rule stay defined in iterations.
    auto_stop : bool
        End the fit where the kit's recommended rule for the task fires (unless ``stop_rule``
        names one): for denoising the discrepancy principle (the loss falls to the noise
        variance estimated from the observation, :class:`~dipspec.measure.Discrepancy`), for
        the other tasks the paper's rule (SPEC §6, window ``stop_window``, ε ``stop_eps``).
        The stopping study (``results/stopping.md``) says why; ``stop_rule="paper"`` keeps the
        paper's rule on every task.
    stop_rule : str or StopRule, optional
        End the fit where this rule fires: ``"paper"``, ``"discrepancy"``, ``"es-wmv"``,
        ``"es-emv"``, ``"ratio-plateau"``, ``"oracle"`` (never fires; reports the best-PSNR
        iteration) or a :class:`~dipspec.measure.StopRule` such as ``ESWMV(window=50)``
        (copied, not changed). The rule sees every logged row (and the output, for the
        variance rules); its state is checkpointed. ``result.stop_rule``, ``stop_iteration``
        and ``stopped_at`` report it.
    keep_outputs : sequence of int
        Iterations whose outputs are kept in ``result.snapshots``.
    progress : bool, optional
        Show a tqdm progress bar; default on unless ``$DIPSPEC_PROGRESS`` is ``0`` (the test
        suite sets it, so headless notebook runs send no widget traffic).
    dtype : torch.dtype
    checkpoint : path, optional
        Write the fit's whole state to this file (atomically) every ``checkpoint_every``
        iterations — about every minute of work when that is None — and when Ctrl-C stops it;
        :func:`dipspec.fitting.resume` continues from it, to the same bytes on the CPU.
    checkpoint_every : int, optional
    precision : {"fp32", "bf16"}, optional
        Default: the preset's (``"fp32"`` for quick and paper). ``"bf16"`` runs the network's
        forward pass under ``torch.autocast`` in bfloat16 (convolutions in bf16; σ_max, the
        loss, the instruments and the history stay in ``dtype``, which must then be float32).
        Faster for wide networks on CPUs with bf16 units and on GPUs; on a CPU without them
        (:func:`cpu_has_bf16_units`) it is 2-4x slower and the fit warns.
        ``benchmarks/README.md`` gives its speed and its accuracy against float32.
    channels_last : bool, optional
        Run the network in channels-last (NHWC) memory order. Default: the preset's (off for
        quick and paper). On a CPU it makes the quick preset's step about 10 % faster and
        Gaussian upsampling about 2.5 × faster (``benchmarks/README.md``); the numbers then
        differ from the default layout's by float32 rounding.

    Returns
    -------
    FitResult

    Raises
    ------
    FitDiverged
        The loss became NaN or infinite (checked every 50 iterations); its ``result`` keeps
        the history and the best output so far.
    FitInterrupted
        Ctrl-C (or SIGTERM in the CLI): the fit stops at the end of the iteration, saves its
        checkpoint (if one was asked for) and carries the results so far in ``.result``.

    Examples
    --------
    >>> from dipspec.tasks import Denoise
    >>> clean = torch.rand(1, 1, 20, 24)
    >>> result = fit(Denoise(clean=clean), model=Decoder(out_channels=1, channels=8, stages=2),
    ...              iterations=5, device="cpu", progress=False)
    >>> result.output.shape, list(result.history.columns[:3])
    (torch.Size([1, 1, 20, 24]), ['iteration', 'loss', 'psnr'])
    """
    task = _as_task(task_or_observation)
    result, = _fit_members([task], None if model is None else [model], [int(seed)], callbacks,
                        batched=False, iterations=iterations, device=device, preset=preset,
                        backtracking=backtracking, lr=lr, input_kind=input_kind,
                        reg_noise_std=reg_noise_std, ema=ema, backtrack_every=backtrack_every,
                        log_every=log_every, metrics_every=metrics_every, auto_stop=auto_stop,
                        stop_window=stop_window, stop_eps=stop_eps, stop_rule=stop_rule,
                        keep_outputs=tuple(keep_outputs), progress=progress, dtype=dtype,
                        checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                        precision=precision, channels_last=channels_last)
    return _single(result)


def fit_many(tasks: Task | Tensor | Sequence[Task | Tensor],
             models: Sequence[nn.Module] | None = None, iterations: int | None = None,
             lr: float = 1e-3, seeds: int | Sequence[int] = 0,
             device: str | torch.device = "auto",
             callbacks: Iterable[Callable[[dict], bool | None]] = (), *,
             preset: str = "auto", input_kind: str = "fourier", reg_noise_std: float = 0.0,
             ema: float | None = None, backtracking: bool | None = None,
             backtrack_every: int = 10, log_every: int = 1, metrics_every: int = 1,
             auto_stop: bool = False, stop_window: int = 100, stop_eps: float = 0.01,
             stop_rule: str | StopRule | None = None,
             keep_outputs: Sequence[int] = (), progress: bool | None = None,
             dtype: torch.dtype = torch.float32,
             channels_last: bool | None = None, checkpoint: str | os.PathLike | None = None,
             checkpoint_every: int | None = None,
             precision: str | None = None) -> list[FitResult]:
    """Run K independent fits of one architecture at once, as K calls to ``fit`` would.

    Member ``k`` is ``fit(tasks[k], models[k], iterations, lr, seeds[k], ...)``: its own
    weights, Adam state, λ (per layer, ``None`` allowed), Gaussian σ, seed, task, history,
    backtracking and stopping. The K networks run as one grouped network, which amortises the
    per-operation overhead and keeps the processor busy with larger operations.

    Parameters
    ----------
    tasks : Task, Tensor or sequence of them
        One task for every member, or one per member (different images, noise draws or
        operators are fine; all must have the same output size and channel count).
    models : sequence of nn.Module, optional
        One :class:`~dipspec.models.Decoder` or :class:`~dipspec.models.ConvNet` per member,
        of one architecture (channels, stages, upsampling mode, σ method); λ and the Gaussian
        σ may differ. Default: ``fit``'s default model for each member's task and seed.
    iterations, lr, device, preset, input_kind, reg_noise_std, ema, backtracking,
    backtrack_every, log_every, metrics_every, auto_stop, stop_window, stop_eps, stop_rule,
    keep_outputs, progress, dtype, checkpoint, checkpoint_every, precision
        As :func:`dipspec.fit`, applied to every member (``backtracking=None`` follows each
        member's task; each member gets its own copy of the stop rule). A member whose loss
        becomes non-finite is frozen there (``result.diverged``, with a warning) while the
        others carry on.
    seeds : int or sequence of int
        Seed of each member's code ``z``, input perturbation and default model.
    callbacks : iterable of callables
        As :func:`dipspec.fit`; the dict also holds ``"member"`` (the member's index), and a
        callback returning ``True`` ends that member's fit only.
    channels_last : bool, optional
        Run the network in channels-last memory order. Default: on for K > 1 (the grouped
        convolutions run faster so on CPUs), else the preset's (off for quick and paper: one
        member then *is* ``fit``).

    Returns
    -------
    list of FitResult
        One per member, in order, as :func:`dipspec.fit` returns it; ``wall_time`` is the time
        of the whole batched run, and each ``model`` holds that member's final weights.

    Raises
    ------
    ValueError
        If the models differ in architecture, the tasks in output size or channels, the list
        lengths disagree, or a model cannot be batched (anything but Decoder and ConvNet).

    Notes
    -----
    Speed: the gain comes from running K small networks as one larger one. On a GPU that fills
    the device; on a CPU it pays for narrow networks (the quick preset's 32 channels), while at
    the paper's width (128 channels) a single network's convolutions already keep a CPU busy
    and grouped convolutions run slower than separate ones, so on a CPU the wide layers run as
    one convolution per member (the rest of the step stays batched).

    A member that stops early (its stop rule or a callback) keeps its results from that
    iteration: its output, best image, history and weights are frozen there, while the batch
    carries on for the others (its columns still compute, unused) and ends when every member
    has stopped.

    Equivalence with sequential fits: both run the same engine
    (:mod:`dipspec.fitting.engine`); with one member ``fit_many`` *is* ``fit`` (the model runs
    as it is, bit for bit the same history). With K > 1 the forward pass, the σ_max solve per
    kernel, the loss, Adam and the backtracking are the same operations per member; only the
    grouped convolution (and the spatial means of the batch norm, in channels-last order) sums
    in another order. In float64 that stays at rounding level: members equal their sequential
    fits to 1e-12 (relative) through a whole fit of 200 iterations
    (``tests/test_engine.py``). In float32 the same rounding differences (about 1e-7
    relative per step) are amplified wherever training is chaotic, as any 1e-7 change of the
    initial weights would be: the runs agree early on (``tests/test_batched.py``) but drift
    apart later, by a few tenths of a dB of PSNR by iterations 100–300 (0.24–0.31 dB were
    reported for 32-wide decoders at 64², issue 11). Use float64 when you need members to
    reproduce sequential fits.

    Examples
    --------
    >>> from dipspec.models import Decoder
    >>> from dipspec.tasks import Denoise
    >>> task = Denoise(clean=torch.rand(1, 1, 40, 40))
    >>> nets = [Decoder(out_channels=1, channels=8, stages=2, lipschitz_lambda=lam)
    ...         for lam in (None, 1.0, 2.0)]
    >>> results = fit_many(task, nets, iterations=3, device="cpu", progress=False)
    >>> len(results), results[1].output.shape
    (3, torch.Size([1, 1, 40, 40]))
    """
    k = _count(tasks, models, seeds)
    task_list = [_as_task(t) for t in _as_list(tasks, k, "tasks")]
    seed_list = [int(s) for s in _as_list(seeds, k, "seeds")]
    if models is not None:
        models = list(models)
        if len(set(map(id, models))) != len(models):
            raise ValueError("fit_many got the same model object twice; build one model per fit")
    results = _fit_members(task_list, models, seed_list, callbacks, batched=True,
                        iterations=iterations, device=device, preset=preset,
                        backtracking=backtracking, lr=lr, input_kind=input_kind,
                        reg_noise_std=reg_noise_std, ema=ema, backtrack_every=backtrack_every,
                        log_every=log_every, metrics_every=metrics_every, auto_stop=auto_stop,
                        stop_window=stop_window, stop_eps=stop_eps, stop_rule=stop_rule,
                        keep_outputs=tuple(keep_outputs), progress=progress, dtype=dtype,
                        channels_last=True if channels_last is None and k > 1
                        else channels_last,
                        checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                        precision=precision)
    return _many(results)


def resume(checkpoint: str | os.PathLike, callbacks: Iterable[Callable[[dict], bool | None]] = (),
           *, progress: bool | None = None, save_to: str | os.PathLike | None = "same",
           checkpoint_every: int | None | str = "same",
           device: str | torch.device | None = None) -> FitResult | list[FitResult]:
    """Continue a fit from its checkpoint; returns what ``fit`` (or ``fit_many``) would have.

    On the CPU the results are the same bytes as those of a run that was never stopped.

    Parameters
    ----------
    checkpoint : path
        A file written by ``fit(..., checkpoint=PATH)``. It holds pickled tasks and models:
        resume only checkpoints you wrote yourself.
    callbacks : iterable of callables
        As :func:`fit` (callbacks are not saved in the checkpoint).
    progress : bool, optional
    save_to, checkpoint_every
        Where and how often the resumed fit checkpoints (default: as before).
    device : optional
        Default: the device the fit ran on.

    Examples
    --------
    >>> import tempfile, os
    >>> from dipspec.nn import Decoder
    >>> from dipspec.tasks import Denoise
    >>> task = Denoise(clean=torch.rand(1, 1, 16, 16))
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.pt")
    >>> whole = fit(task, Decoder(out_channels=1, channels=4, stages=2), iterations=6,
    ...             metrics_every=0, device="cpu", progress=False)
    >>> first = fit(task, Decoder(out_channels=1, channels=4, stages=2), iterations=6,
    ...             metrics_every=0, device="cpu", progress=False, checkpoint=path,
    ...             checkpoint_every=3, callbacks=[lambda info: info["iteration"] == 3])
    >>> rest = resume(path, progress=False)  # the checkpoint of iteration 2 (3 completed)
    >>> bool((rest.history == whole.history).all().all())
    True
    """
    payload = read_checkpoint(checkpoint, None if device is None else resolve_device(device))
    settings = payload["settings"]
    settings = replace(
        settings, progress=progress,
        checkpoint=settings.checkpoint if save_to == "same" else (
            None if save_to is None else str(save_to)),
        checkpoint_every=(settings.checkpoint_every if checkpoint_every == "same"
                          else checkpoint_every))
    run_device = resolve_device(payload["device"] if device is None else device)
    results = run(payload["tasks"], payload["models"], payload["seeds"],
                  payload["backtrack_on"], settings, run_device, callbacks,
                  payload["with_ratio"], face=payload["face"], resume=payload)
    return _single(results[0]) if payload["face"] == "fit" else _many(results)


def _single(result: FitResult) -> FitResult:
    if result.diverged:
        raise FitDiverged(result, int(result.history["iteration"].iloc[-1]))
    return result


def _many(results: list[FitResult]) -> list[FitResult]:
    for m, result in enumerate(results):
        if result.diverged:
            warnings.warn(f"fit_many member {m}: the loss became non-finite by iteration "
                          f"{int(result.history['iteration'].iloc[-1])}; it stopped there "
                          "(result.diverged), the others carried on", stacklevel=3)
    return results


def _fit_members(tasks: list[Task], models: list[nn.Module] | None, seeds: list[int],
                 callbacks, *, batched: bool, iterations: int | None, device, preset,
                 backtracking: bool | None, **loop) -> list[FitResult]:
    """Resolve defaults and check everything once, for both faces; then run the engine."""
    run_device = resolve_device(device)
    scale = resolve(preset, run_device)
    if iterations is None:
        iterations = min(min(t.default_iterations for t in tasks), scale.iterations)
    for knob in ("precision", "channels_last"):  # None: the preset's
        if loop.get(knob) is None:
            loop[knob] = getattr(scale, knob)
    settings = Settings(iterations=iterations, **loop)
    _check_loop(settings)
    if settings.precision == "bf16" and run_device.type == "cpu" and not cpu_has_bf16_units():
        warnings.warn("precision='bf16' on a CPU without bfloat16 units (AVX512-BF16 or AMX): "
                      "autocast emulates them and the fit runs 2-4x slower than float32 "
                      "(benchmarks/README.md); use precision='fp32' here", stacklevel=3)
    rules = resolve_stop_rules(settings.stop_rule, settings.auto_stop, settings.stop_window,
                               settings.stop_eps, tasks) or []
    for rule in rules:
        _check_rule(rule, settings)
    # the ratio's checks name the first rule that reads it (auto_stop: the paper's)
    rule = next((r for r in rules if "ratio" in r.needs_meters), None)
    if models is None:
        models = [_default_model(t, scale, s) for t, s in zip(tasks, seeds)]
    if batched:
        check_groupable(models)
        sizes = {(t.output_size, t.channels, tuple(t.observation.shape)) for t in tasks}
        if len(sizes) > 1:
            raise ValueError(f"fit_many needs tasks of one size and channel count, got {sizes}; "
                             "resize the images to one size or fit them in separate calls")
    if rule is not None and not all(map(_is_controlled, models)):
        warnings.warn(f"{_asked(rule, settings)} without λ or σ control: plain DIP keeps "
                      "changing as it fits the noise, so the rule may stop late or never "
                      "(SPEC §6)", stacklevel=3)
    backtrack_on = [t.backtracking if backtracking is None else bool(backtracking)
                    for t in tasks]
    with_ratio = _ratio_available(*tasks[0].output_size, settings, rule)
    return run(tasks, models, seeds, backtrack_on, settings, run_device, callbacks, with_ratio,
               face="fit_many" if batched else "fit")


def _as_task(task_or_observation) -> Task:
    if isinstance(task_or_observation, Task):
        return task_or_observation
    if isinstance(task_or_observation, Tensor):
        # A bare tensor is a user's own degraded photo: fit it with the identity operator.
        return Denoise(observation=as_batched_image(task_or_observation, "observation"))
    raise TypeError(f"fit expects a dipspec.tasks.Task or an image tensor, got "
                    f"{type(task_or_observation).__name__}; e.g. fit(Denoise(clean=image))")


def _default_model(task: Task, preset: Preset, seed: int) -> nn.Module:
    return Decoder(out_channels=task.channels, channels=preset.channels,
                   lipschitz_lambda=default_lambda(task, preset), seed=seed)


def _is_controlled(model: nn.Module) -> bool:
    if getattr(model, "lipschitz_lambda", None) is not None:
        return True
    return getattr(model, "upsample", None) == "gaussian"


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 pays.

    Without them oneDNN emulates bfloat16 in float32 and autocast only adds conversions: on an
    AVX-512 Xeon without them a bf16 step took 2.0x (64², 32 ch) to 3.7x (128², 128 ch) the
    float32 step (benchmarks/README.md, row 8).
    """
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _check_loop(settings: Settings) -> None:
    if settings.iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {settings.iterations}")
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {settings.lr}; the paper "
                         "uses 1e-3")
    if settings.ema is not None and not 0 < settings.ema < 1:
        raise ValueError(f"ema must lie in (0, 1) or be None, got {settings.ema}; Ulyanov "
                         "et al. use 0.99")
    if not (math.isfinite(settings.reg_noise_std) and settings.reg_noise_std >= 0):
        raise ValueError(f"reg_noise_std must be a finite number >= 0, got "
                         f"{settings.reg_noise_std}; Ulyanov et al. use 1/30")
    if settings.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {settings.precision!r}")
    if settings.precision == "bf16" and settings.dtype != torch.float32:
        raise ValueError(f"precision='bf16' runs the network in bfloat16 beside float32 "
                         f"weights; pass dtype=torch.float32, not {settings.dtype}")
    if settings.checkpoint_every is not None and settings.checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1 or None, got "
                         f"{settings.checkpoint_every}")
    if settings.metrics_every < 0 or settings.log_every < 0 or settings.backtrack_every < 1:
        raise ValueError("metrics_every and log_every must be >= 0 and backtrack_every >= 1")


def _check_rule(rule: StopRule | None, settings: Settings) -> None:
    """A stop rule that reads meters the fit will not measure is refused."""
    needed = [c for c in (() if rule is None else rule.needs_meters) if c in METRIC_COLUMNS]
    if needed and not settings.metrics_every:
        raise ValueError(f"{_asked(rule, settings)} needs the {'/'.join(needed)} meter: set "
                         "metrics_every >= 1")


def _asked(rule: StopRule, settings: Settings) -> str:
    """How the user asked for ``rule``, for messages: auto_stop, or stop_rule='name'."""
    return "auto_stop" if settings.stop_rule is None else f"stop_rule={rule_name(rule)!r}"


def _ratio_available(height: int, width: int, settings: Settings,
                     rule: StopRule | None) -> bool:
    """Whether the blur/sharpness ratio is defined at this size; refuse or warn if it is not."""
    with_ratio = ratio_defined(height, width)
    if rule is not None and "ratio" in rule.needs_meters and not with_ratio:
        raise ValueError(f"{_asked(rule, settings)} needs an image of at least 35x35 for the "
                         f"blur/sharpness ratio, got {height}x{width}; fit a larger image or "
                         "use a rule without the ratio (stop_rule='es-wmv')")
    if settings.metrics_every and not with_ratio:
        warnings.warn(f"{height}x{width} is too small for the blur/sharpness ratio (needs "
                      "35x35): its columns stay NaN, FBC is still measured", stacklevel=4)
    return with_ratio


def _as_list(value, k: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise ValueError(f"{name} has {len(value)} entries but there are {k} fits; "
                             f"pass one per fit or a single value for all")
        return list(value)
    return [value] * k


def _count(tasks, models, seeds) -> int:
    counts = {len(v) for v in (tasks, models, seeds) if isinstance(v, (list, tuple))}
    if not counts:
        raise ValueError("fit_many needs a list of models, tasks or seeds to know how many fits "
                         "to run, e.g. fit_many(task, models=[Decoder(...), Decoder(...)])")
    if len(counts) > 1:
        raise ValueError(f"tasks, models and seeds disagree on the number of fits: {counts}")
    count = counts.pop()
    if count < 1:
        raise ValueError("fit_many needs at least one fit")
    return count
