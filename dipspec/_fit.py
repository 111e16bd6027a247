"""The DIP fit loop: ``fit(task) -> FitResult`` (SPEC §1, §5–§7).

Everything per iteration stays on the device: the instruments return tensors that are written
into a device-side history buffer, the oracle (best-PSNR) image and the backtracking snapshot
are updated with ``torch.where``/``lerp`` rather than host decisions, and the host reads values
only when it logs (callbacks, the progress bar, the automatic stop) or at the end.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import metrics, spectral, stopping
from ._checks import as_batched_image
from .models import Decoder, make_input
from .presets import Preset, resolve, resolve_device
from .tasks import Denoise, Task

__all__ = ["FitResult", "fit", "padded_size"]

FBC_COLUMNS = tuple(f"fbc_{k}" for k in range(1, 6))
METRIC_COLUMNS = (*FBC_COLUMNS, "blurriness", "sharpness", "ratio")
BACKTRACK_DROP_DB = 5.0


@dataclass
class FitResult:
    """What a fit returns.

    Attributes
    ----------
    output : Tensor, (1, C, H, W)
        The restoration at the last iteration (or at the automatic stop), on the CPU; for
        detail enhancement, the enhanced image (``task.finalize``).
    best : Tensor or None
        The best-PSNR output (the oracle) when a clean image is known.
    history : pandas.DataFrame
        One row per logged iteration: ``iteration``, ``loss``, ``psnr`` (NaN without a clean
        image), ``psnr_avg`` with output averaging, and with ``metrics_every > 0`` the columns
        ``fbc_1 … fbc_5`` (band 1 lowest), ``blurriness``, ``sharpness``, ``ratio``.
    stop_iteration : int or None
        Where the automatic-stopping rule (SPEC §6) fires on the logged ratios, whether or not
        the fit was ended there.
    snapshots : dict
        Outputs at the iterations requested with ``keep_outputs``.
    """

    output: Tensor
    best: Tensor | None
    history: pd.DataFrame
    stop_iteration: int | None
    task: Task
    model: nn.Module
    snapshots: dict[int, Tensor] = field(default_factory=dict)
    output_avg: Tensor | None = None
    backtracks: int = 0
    wall_time: float = 0.0
    device: str = "cpu"
    seed: int = 0

    def curve(self, column: str = "psnr", smooth: int = 1) -> pd.Series:
        """``column`` by iteration, smoothed by a centred rolling mean over ``smooth`` rows."""
        series = self.history.set_index("iteration")[column]
        if smooth > 1:
            series = series.rolling(smooth, center=True, min_periods=1).mean()
        return series

    def peak(self, column: str = "psnr", smooth: int = 1) -> tuple[int, float]:
        """``(iteration, value)`` of the maximum of the (smoothed) curve."""
        series = self.curve(column, smooth)
        return int(series.idxmax()), float(series.max())

    def peak_drop_db(self, smooth: int = 1) -> float:
        """How far the final (smoothed) PSNR lies below its peak, in dB."""
        series = self.curve("psnr", smooth)
        return float(series.max() - series.iloc[-1])

    def first_reach(self, column: str, value: float) -> float:
        """First logged iteration at which ``column >= value`` (``inf`` if never)."""
        reached = self.history[self.history[column] >= value]
        return float(reached["iteration"].iloc[0]) if len(reached) else math.inf

    def at(self, iteration: int) -> pd.Series:
        """The logged row nearest to ``iteration``."""
        idx = (self.history["iteration"] - iteration).abs().idxmin()
        return self.history.loc[idx]


def padded_size(height: int, width: int, model: nn.Module) -> tuple[int, int]:
    """The output size the network produces for a ``height × width`` image (then cropped back)."""
    multiple = getattr(model, "required_multiple", lambda: 1)()
    minimum = getattr(model, "min_size", lambda: 1)()

    def up(n: int) -> int:
        return max(minimum, -(-n // multiple) * multiple)

    return up(height), up(width)


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
                   lipschitz_lambda=task.default_lipschitz_lambda, seed=seed)


def _is_controlled(model: nn.Module) -> bool:
    if getattr(model, "lipschitz_lambda", None) is not None:
        return True
    return getattr(model, "upsample", None) == "gaussian"


#: Parameters of at least this many elements make a fit use PyTorch's fused Adam.
FUSED_ADAM_MIN_NUMEL = 1 << 22


def _adam(params: Iterable[Tensor], lr: float,
          member_params: Iterable[Tensor] | None = None) -> torch.optim.Adam:
    """Adam as every fit here runs it (same update rule in both forms).

    The multi-tensor (``foreach``) form writes several temporaries of the parameters' size:
    negligible for the decoders, but 1–2 s per step on a CPU for DIP Linear-2048's
    2.8·10⁸ weights, where the fused kernel (one pass) takes 0.08 s. Networks with a tensor of
    at least :data:`FUSED_ADAM_MIN_NUMEL` elements therefore get the fused kernel. The others
    keep ``foreach``: the fused CPU kernel rounds vector lanes and the tail differently, so a
    stacked :func:`~dipspec.fit_many` member would no longer match its sequential fit.
    ``member_params`` are one network's parameters when ``params`` are stacked ones.
    """
    params = list(params)
    largest = max((p.numel() for p in (params if member_params is None else member_params)),
                  default=0)
    fused = (largest >= FUSED_ADAM_MIN_NUMEL
             and all(p.device.type in ("cpu", "cuda")
                     and p.dtype in (torch.float32, torch.float64) for p in params))
    return torch.optim.Adam(params, lr=lr, fused=fused, foreach=not fused)


def _check_loop(iterations: int, metrics_every: int, log_every: int, backtrack_every: int,
                auto_stop: bool) -> None:
    """The loop settings shared by :func:`fit` and :func:`~dipspec.fit_many`."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if metrics_every < 0 or log_every < 0 or backtrack_every < 1:
        raise ValueError("metrics_every and log_every must be >= 0 and backtrack_every >= 1")
    if auto_stop and not metrics_every:
        raise ValueError("auto_stop needs the blur/sharpness ratio: set metrics_every >= 1")


def _logged_iterations(iterations: int, log_every: int, keep_outputs: Sequence[int]) -> list[int]:
    """Iterations with a history row: every ``log_every``-th, the last, and the kept ones."""
    outside = [i for i in keep_outputs if not 0 <= i < iterations]
    if outside:
        raise ValueError(f"keep_outputs {outside} lie outside the fit's iterations "
                         f"0..{iterations - 1}")
    return sorted(set(range(0, iterations, log_every)) | {iterations - 1}
                  | {int(i) for i in keep_outputs})


def _ratio_available(height: int, width: int, metrics_every: int, auto_stop: bool) -> bool:
    """Whether the blur/sharpness ratio is defined at this size; refuse or warn if it is not."""
    with_ratio = stopping.ratio_defined(height, width)
    if auto_stop and not with_ratio:
        raise ValueError(f"auto_stop needs an image of at least 35x35 for the blur/sharpness "
                         f"ratio, got {height}x{width}; fit a larger image or drop auto_stop")
    if metrics_every and not with_ratio:
        warnings.warn(f"{height}x{width} is too small for the blur/sharpness ratio (needs "
                      "35x35): its columns stay NaN, FBC is still measured", stacklevel=3)
    return with_ratio


def fit(task_or_observation, model: nn.Module | None = None, iterations: int | None = None,
        lr: float = 1e-3, seed: int = 0, device: str | torch.device = "auto",
        callbacks: Iterable[Callable[[dict], bool | None]] = (), *,
        preset: str | Preset = "auto", input_kind: str = "fourier",
        reg_noise_std: float = 0.0, ema: float | None = None,
        backtracking: bool | None = None, backtrack_every: int = 10,
        log_every: int = 1, metrics_every: int = 1, auto_stop: bool = False,
        stop_window: int = 100, stop_eps: float = 0.01,
        keep_outputs: Sequence[int] = (), progress: bool | None = None,
        dtype: torch.dtype = torch.float32) -> FitResult:
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
        End the fit where the rule of SPEC §6 fires (window ``stop_window``, ε ``stop_eps``).
    keep_outputs : sequence of int
        Iterations whose outputs are kept in ``result.snapshots``.
    progress : bool, optional
        Show a tqdm progress bar; default on unless ``$DIPSPEC_PROGRESS`` is ``0`` (the test
        suite sets it, so headless notebook runs send no widget traffic).
    dtype : torch.dtype

    Returns
    -------
    FitResult

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
    run_device = resolve_device(device)
    scale = resolve(preset, run_device)
    if iterations is None:
        iterations = min(task.default_iterations, scale.iterations)
    _check_loop(iterations, metrics_every, log_every, backtrack_every, auto_stop)
    if model is None:
        model = _default_model(task, scale, seed)
    if auto_stop and not _is_controlled(model):
        warnings.warn("auto_stop without λ or σ control: plain DIP keeps changing as it fits "
                      "the noise, so the rule may stop late or never (SPEC §6)", stacklevel=2)
    if backtracking is None:
        backtracking = task.backtracking

    task = task.to(run_device)
    observation = task.observation.to(dtype)
    clean = None if task.clean is None else task.clean.to(dtype)
    height, width = task.output_size
    with_ratio = _ratio_available(height, width, metrics_every, auto_stop)
    out_h, out_w = padded_size(height, width, model)
    top, left = (out_h - height) // 2, (out_w - width) // 2
    code_channels, code_h, code_w = model.input_shape(out_h, out_w)
    z = make_input(input_kind, code_channels, (code_h, code_w), seed=seed).to(run_device, dtype)
    model = model.to(run_device, dtype).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _adam(params, lr)
    perturb_gen = torch.Generator(device=run_device).manual_seed(seed + 1)
    pixel_batch = getattr(model, "pixel_batch", None)
    if pixel_batch and task.A(observation).shape != observation.shape:
        raise ValueError(f"{type(model).__name__} trains on pixel minibatches, which needs a "
                         f"task whose operator keeps the image size, not {task.name!r}")
    # A per-pixel network under the identity operator needs only its minibatch to learn: the
    # whole image is evaluated (without a graph) only where the history or backtracking reads it.
    minibatch_only = bool(pixel_batch) and type(task).A is Task.A and not ema

    log_every = log_every or iterations
    has_clean = clean is not None
    columns = ["loss", "psnr"] + (["psnr_avg"] if ema else [])
    if metrics_every:
        columns += list(METRIC_COLUMNS)
    rows = _logged_iterations(iterations, log_every, keep_outputs)
    row_of = {it: i for i, it in enumerate(rows)}
    history = torch.full((len(rows), len(columns)), math.nan, device=run_device, dtype=dtype)
    ratio_col = columns.index("ratio") if metrics_every else None

    best = torch.zeros_like(clean) if has_clean else None
    best_psnr = torch.tensor(-math.inf, device=run_device, dtype=dtype)
    output_avg = None
    snapshot = None
    backtracks = torch.zeros((), device=run_device, dtype=torch.int64)
    stopper = stopping.AutoStop(window=stop_window, eps=stop_eps) if auto_stop else None
    callbacks = list(callbacks)
    keep = set(keep_outputs)
    snapshots: dict[int, Tensor] = {}
    bar = _progress_bar(iterations, progress)
    last_iteration = iterations - 1
    started = time.perf_counter()

    for it in range(iterations):
        code = z + reg_noise_std * torch.randn(z.shape, generator=perturb_gen, device=run_device,
                                               dtype=dtype) if reg_noise_std else z
        if minibatch_only:  # coordinate MLPs train on random pixel minibatches (ReLUNet)
            pixels = torch.randint(height * width, (pixel_batch,), generator=perturb_gen,
                                   device=run_device)
            if (it in row_of or (metrics_every and it % metrics_every == 0)
                    or (backtracking and it % backtrack_every == 0)):
                with torch.no_grad():
                    output = model(code)[:, :, top:top + height, left:left + width]
            coords = code[:, :, top:top + height, left:left + width].flatten(2)[..., pixels]
            loss = F.mse_loss(model(coords[:, :, None]).flatten(2),
                              observation.flatten(2)[..., pixels])
        elif pixel_batch:
            output = model(code)[:, :, top:top + height, left:left + width]
            pixels = torch.randint(height * width, (pixel_batch,), generator=perturb_gen,
                                   device=run_device)
            loss = F.mse_loss(task.A(output).flatten(2)[..., pixels],
                              observation.flatten(2)[..., pixels])
        else:
            output = model(code)[:, :, top:top + height, left:left + width]
            loss = F.mse_loss(task.A(output), observation)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        out = output.detach()  # minibatch-only steps: the last evaluated image, unread here
        if ema:
            output_avg = out.clone() if output_avg is None else output_avg.mul_(ema).add_(
                out, alpha=1 - ema)
        if backtracking and it % backtrack_every == 0:
            snapshot = _backtrack(it, out, observation, params, optimizer, snapshot, backtracks)

        row = row_of.get(it)
        measure = metrics_every and it % metrics_every == 0
        if row is None and not measure:
            bar.update(1)
            continue
        values = [loss.detach(), _psnr_or_nan(out, clean)]
        if ema:
            values.append(_psnr_or_nan(output_avg, clean))
        if measure:
            # FBC compares with the observation; super-resolution compares in its (low-res) space
            measured = out if out.shape == task.reference.shape else task.A(out)
            values += _instruments(out, measured, task.reference, with_ratio)
        vector = torch.stack([v.reshape(()).to(dtype) for v in values])
        if has_clean:
            better = vector[1] > best_psnr
            best = torch.where(better, out, best)
            best_psnr = torch.maximum(best_psnr, vector[1])
        if row is None:  # measured but not logged: the stop rule still sees the ratio
            row = len(rows)
            rows.append(it)
            history = torch.cat([history, vector[None]])
        else:
            history[row] = vector[: len(columns)] if measure else torch.cat(
                [vector, history.new_full((len(columns) - len(vector),), math.nan)])
        if it in keep:
            snapshots[it] = task.finalize(out).cpu()
        stop = False
        if stopper is not None and measure:
            stop = stopper.update(it, history[row, ratio_col])
        if callbacks:
            info = dict(zip(["iteration", *columns], [it, *history[row].tolist()]))
            info.update(output=out, iterations=iterations)
            stop = any([bool(cb(info)) for cb in callbacks]) or stop
        bar.update(1)
        if row % max(1, len(rows) // 50) == 0 and has_clean and not isinstance(bar, _NoBar):
            bar.set_postfix(psnr=f"{history[row, 1].item():.2f}")
        if stop:
            last_iteration = it
            break
    bar.close()

    frame, stop_iteration = _history_frame(history, rows, columns, last_iteration,
                                           bool(metrics_every), stop_window, stop_eps)
    return FitResult(
        output=task.finalize(out).cpu(),
        best=None if best is None else task.finalize(best).cpu(),
        history=frame,
        stop_iteration=stop_iteration,
        task=task, model=model, snapshots=snapshots,
        output_avg=None if output_avg is None else task.finalize(output_avg).cpu(),
        backtracks=int(backtracks), wall_time=time.perf_counter() - started,
        device=str(run_device), seed=seed,
    )


def _history_frame(history: Tensor, rows: list[int], columns: list[str], last_iteration: int,
                   measured: bool, stop_window: int,
                   stop_eps: float) -> tuple[pd.DataFrame, int | None]:
    """The history as ``FitResult.history`` (rows in iteration order, up to
    ``last_iteration``), and where the stopping rule fires on it."""
    order = sorted(range(len(rows)), key=rows.__getitem__)
    frame = pd.DataFrame(history[order].cpu().double().numpy(), columns=columns)
    frame.insert(0, "iteration", [rows[i] for i in order])
    frame = frame[frame["iteration"] <= last_iteration].reset_index(drop=True)
    if not measured:
        return frame, None
    ratios = frame.dropna(subset=["ratio"])
    stop = stopping.first_stop_iteration(ratios["ratio"].to_numpy().copy(), window=stop_window,
                                         eps=stop_eps,
                                         iterations=ratios["iteration"].to_numpy().copy())
    return frame, None if stop is None else int(stop)


def _psnr_or_nan(image: Tensor, clean: Tensor | None) -> Tensor:
    if clean is None:
        return torch.full((), math.nan, device=image.device, dtype=image.dtype)
    return metrics.psnr(image, clean)[0]


def _instruments(out: Tensor, measured: Tensor, reference: Tensor,
                 with_ratio: bool) -> list[Tensor]:
    """FBC of ``measured`` against the observation (SPEC §5); the ratio of ``out`` (SPEC §6)."""
    bands = spectral.fbc(measured, reference)[0]
    if not with_ratio:
        nan = torch.full((), math.nan, device=out.device, dtype=out.dtype)
        return [*bands.unbind(0), nan, nan, nan]
    blur = stopping.blurriness(out)[0]
    sharp = stopping.mlv_sharpness(out)[0]
    return [*bands.unbind(0), blur, sharp, blur / sharp]


def _backtrack(it: int, out: Tensor, observation: Tensor, params: list[Tensor],
               optimizer: torch.optim.Optimizer, snapshot, backtracks: Tensor):
    """SPEC §7 without a host decision: restore when PSNR(out, y) fell > 5 dB, else snapshot.

    ``lerp`` with a 0/1 weight returns exactly one of its ends, so the restore is a select.
    """
    state = [optimizer.state[p][key] for p in params for key in ("exp_avg", "exp_avg_sq")
             if p in optimizer.state]
    tensors = [p.data for p in params] + state
    psnr_obs = metrics.psnr(out, observation)[0]
    if snapshot is None:
        return [t.clone() for t in tensors], psnr_obs
    saved, saved_psnr = snapshot
    if len(saved) != len(tensors):  # Adam state appeared after the first step
        return [t.clone() for t in tensors], psnr_obs
    drop = psnr_obs < saved_psnr - BACKTRACK_DROP_DB
    weight = drop.to(out.dtype)
    torch._foreach_lerp_(tensors, saved, weight)
    torch._foreach_copy_(saved, tensors)
    backtracks += drop
    return saved, torch.where(drop, saved_psnr, psnr_obs)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_enabled(progress: bool | None) -> bool:
    if progress is None:
        return os.environ.get("DIPSPEC_PROGRESS", "1") != "0"
    return bool(progress)


def _progress_bar(total: int, enabled: bool | None):
    if not _progress_enabled(enabled):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fit", leave=False, mininterval=1.0)
