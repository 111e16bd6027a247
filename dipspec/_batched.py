"""Batched fits: ``fit_many`` runs K independent DIP fits as one computation.

The K networks share an architecture but nothing else: each member has its own weights, Adam
moments, λ or σ, seed, task, history, backtracking snapshot and stopping decision. They run
side by side as one network K times as wide whose convolutions are grouped (``groups=K``), so
every step is one forward, one backward and one Adam update for all K members. The members
never mix: a grouped convolution keeps each member's channels apart, the loss is a sum of the
members' own losses, and Adam is elementwise. Only the order of floating-point sums inside a
grouped convolution differs from K separate fits (see :func:`fit_many`, Notes).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import metrics, spectral, stopping
from ._fit import (
    BACKTRACK_DROP_DB,
    METRIC_COLUMNS,
    FitResult,
    _adam,
    _as_task,
    _check_loop,
    _default_model,
    _history_frame,
    _is_controlled,
    _logged_iterations,
    _progress_bar,
    _ratio_available,
    padded_size,
)
from .layers import (
    GaussianUpsample,
    MeanOnlyBatchNorm,
    _gaussian_upsample,
    _LipschitzMixin,
    _sigma_for,
)
from .models import _ControlledNet, make_input
from .presets import resolve, resolve_device
from .tasks import Task

__all__ = ["fit_many"]

#: Modules that act on each channel separately: they run unchanged on the K stacked networks.
_CHANNELWISE = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d,
                nn.Upsample, nn.LeakyReLU, nn.ReLU, nn.ELU, nn.Softplus, nn.Sigmoid, nn.Tanh,
                nn.Identity)
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


class _GroupedNet:
    """K networks of one architecture evaluated as a single grouped network.

    Activations are ``(1, K·C, H, W)``: member ``k`` owns channels ``[k·C, (k+1)·C)``. Every
    parameter is one stacked leaf tensor ``(K, ...)`` that Adam updates directly.
    """

    def __init__(self, models: list[nn.Module], channels_last: bool, split_convs: bool) -> None:
        self.k = len(models)
        self.template = models[0]
        self.channels_last = channels_last and not split_convs
        self.split_convs = split_convs
        named = [dict(m.named_parameters()) for m in models]
        with torch.no_grad():
            self.params = {name: torch.stack([n[name].detach() for n in named]).requires_grad_()
                           for name in named[0]}
        self.controlled: dict[str, tuple[str, Tensor, bool]] = {}  # weight -> (method, λ, T)
        self.kernels: dict[str, Tensor] = {}  # Gaussian upsamplers: (K, 1, 5, 5)
        self.vectors: dict[tuple, Tensor | None] = {}  # "warm" σ state per group of layers
        modules = [dict(m.named_modules()) for m in models]
        for path, module in self.template.named_modules():
            if isinstance(module, _LipschitzMixin):
                layers = [mods[path] for mods in modules]
                lambdas = [layer.lipschitz_lambda for layer in layers]
                if all(lam is None for lam in lambdas):
                    continue
                table = torch.tensor([math.inf if lam is None else lam for lam in lambdas],
                                     dtype=module.weight.dtype, device=module.weight.device)
                transposed = isinstance(module, nn.ConvTranspose2d)
                self.controlled[_join(path, "weight")] = (module.sigma_method, table, transposed)
            elif isinstance(module, GaussianUpsample):
                self.kernels[path] = torch.cat([mods[path].weight for mods in modules])
        self.groups = self._groups()
        for key, names in self.groups.items():
            vectors = [mods[name.rsplit(".", 1)[0]]._sigma_vector for name in names
                       for mods in modules]
            complete = key[1] == "warm" and all(v is not None for v in vectors)
            like = self.params[names[0]]
            self.vectors[key] = torch.stack([v.to(like) for v in vectors]) if complete else None

    def _matrices(self, name: str) -> Tensor:
        """The stacked kernels of a controlled layer as ``(K, out, in·k·k)`` matrices."""
        weight = self.params[name].detach()
        if self.controlled[name][2]:  # transposed conv: (in, out, k, k) read as (out, in·k·k)
            weight = weight.transpose(1, 2)
        return weight.flatten(2)

    def _groups(self) -> dict[tuple, list[str]]:
        """Controlled weights by (matrix shape, σ method): one σ solve per group and step."""
        groups: dict[tuple, list[str]] = {}
        for name, (method, _, _) in self.controlled.items():
            key = (tuple(self._matrices(name).shape[1:]), method)
            groups.setdefault(key, []).append(name)
        return groups

    def effective_weights(self) -> dict[str, Tensor]:
        """``W̄ / max(1, σ/λ)`` for every controlled layer and member, one solve per shape."""
        weights = {}
        for key, names in self.groups.items():
            stacked = torch.cat([self._matrices(name) for name in names])  # (L·K, r, c)
            sigmas, self.vectors[key] = _sigma_for(stacked, key[1], self.vectors[key])
            for name, sigma in zip(names, sigmas.view(len(names), self.k)):
                divisor = torch.clamp(sigma / self.controlled[name][1], min=1.0)
                weight = self.params[name]
                weights[name] = weight / divisor.view(-1, *[1] * (weight.ndim - 1))
        return weights

    def forward(self, code: Tensor) -> Tensor:
        """``code`` ``(1, K·C_in, h, w)`` → output ``(K, C, H, W)``."""
        weights = {**self.params, **self.effective_weights()}
        out = self._run(self.template.body, code, "body", weights)
        return out.contiguous().view(self.k, -1, *out.shape[-2:])

    def _run(self, module: nn.Module, x: Tensor, path: str, weights: dict[str, Tensor]) -> Tensor:
        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                x = self._run(child, x, _join(path, name), weights)
            return x
        if isinstance(module, _CONVS):
            return self._conv(module, x, path, weights)
        if isinstance(module, MeanOnlyBatchNorm):
            bias = weights[_join(path, "bias")]
            return x - x.mean(dim=(2, 3), keepdim=True) + bias.view(1, -1, 1, 1)
        if isinstance(module, GaussianUpsample):
            return _gaussian_upsample(x, self.kernels[path])
        return module(x)  # channel-wise (checked by _check_architecture)

    def _conv(self, module: nn.Module, x: Tensor, path: str, weights: dict[str, Tensor]) -> Tensor:
        weight = weights[_join(path, "weight")].flatten(0, 1)
        bias = weights.get(_join(path, "bias"))
        bias = None if bias is None else bias.flatten()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if isinstance(module, nn.ConvTranspose2d):
            def conv(x, weight, bias, groups):
                return F.conv_transpose2d(x, weight, bias, module.stride, module.padding,
                                          module.output_padding, groups, module.dilation)
        else:
            if module.padding_mode != "zeros":
                x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)

            def conv(x, weight, bias, groups):
                padding = module.padding if module.padding_mode == "zeros" else 0
                return F.conv2d(x, weight, bias, module.stride, padding, module.dilation, groups)
        if not self.split_convs:
            return conv(x, weight, bias, module.groups * self.k)
        # one convolution per member on its slice of the channels (wide layers on a CPU)
        biases = [None] * self.k if bias is None else bias.chunk(self.k)
        return torch.cat([conv(part, w, b, module.groups) for part, w, b in
                          zip(x.chunk(self.k, dim=1), weight.chunk(self.k), biases)], dim=1)

    def copy_to(self, member: int, model: nn.Module) -> None:
        """Write member ``member``'s current weights (and σ state) into ``model``."""
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(self.params[name][member])
        modules = dict(model.named_modules())
        for key, names in self.groups.items():
            vectors = self.vectors[key]
            if vectors is None:
                continue
            for i, name in enumerate(names):
                modules[name.rsplit(".", 1)[0]]._sigma_vector = vectors[i * self.k + member].clone()

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())


def _widest_conv(model: nn.Module) -> int:
    """The largest ``in_channels × out_channels`` of the model's convolutions."""
    return max((m.in_channels * m.out_channels for m in model.modules()
                if isinstance(m, _CONVS)), default=0)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_architecture(models: list[nn.Module]) -> None:
    """Raise ``ValueError`` unless the models can run as one grouped network."""
    first = models[0]
    if not isinstance(first, _ControlledNet):
        raise ValueError(f"fit_many runs Decoder and ConvNet models, got {type(first).__name__}; "
                         "fit other models one by one with dipspec.fit")
    for path, module in first.body.named_modules():
        if isinstance(module, (nn.Sequential, *_CONVS, MeanOnlyBatchNorm, GaussianUpsample,
                               *_CHANNELWISE)):
            continue
        raise ValueError(f"fit_many cannot batch the layer {path!r} ({type(module).__name__}); "
                         "fit this model one by one with dipspec.fit")
    reference = _signature(first)
    for k, model in enumerate(models[1:], start=1):
        if type(model) is not type(first):
            raise ValueError(f"fit_many needs one architecture, got {type(first).__name__} and "
                             f"{type(model).__name__} (model {k})")
        signature = _signature(model)
        if signature != reference:
            diff = next(a for a, b in zip(signature + [None], reference + [None]) if a != b)
            raise ValueError(f"fit_many needs models of one architecture (same channels, stages "
                             f"and upsampling); model {k} differs from model 0 at {diff}; "
                             "λ and σ may differ, nothing else")


def _signature(model: nn.Module) -> list:
    """What must agree between members: module types, shapes and non-λ/σ settings."""
    items: list = [("upsample", getattr(model, "upsample", None))]
    for path, module in model.named_modules():
        entry = [path, type(module).__name__]
        if isinstance(module, _CONVS):
            entry += [module.stride, module.padding, module.dilation, module.groups,
                      module.padding_mode, getattr(module, "output_padding", None)]
        if isinstance(module, _LipschitzMixin):
            entry.append(module.sigma_method)
        if isinstance(module, nn.Upsample):
            entry += [module.mode, module.scale_factor, module.align_corners]
        if isinstance(module, nn.LeakyReLU):
            entry.append(module.negative_slope)
        if isinstance(module, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d,
                               nn.ConstantPad2d)):
            entry.append(module.padding)
        items.append(tuple(entry))
    items += [(name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()]
    return items


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


def fit_many(tasks: Task | Tensor | Sequence[Task | Tensor],
             models: Sequence[nn.Module] | None = None, iterations: int | None = None,
             lr: float = 1e-3, seeds: int | Sequence[int] = 0,
             device: str | torch.device = "auto",
             callbacks: Iterable[Callable[[dict], bool | None]] = (), *,
             preset: str = "auto", input_kind: str = "fourier", reg_noise_std: float = 0.0,
             ema: float | None = None, backtracking: bool | None = None,
             backtrack_every: int = 10, log_every: int = 1, metrics_every: int = 1,
             auto_stop: bool = False, stop_window: int = 100, stop_eps: float = 0.01,
             keep_outputs: Sequence[int] = (), progress: bool | None = None,
             dtype: torch.dtype = torch.float32,
             channels_last: bool = True) -> list[FitResult]:
    """Run K independent fits of one architecture at once; same results as K calls to ``fit``.

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
    backtrack_every, log_every, metrics_every, auto_stop, stop_window, stop_eps, keep_outputs,
    progress, dtype
        As :func:`dipspec.fit`, applied to every member (``backtracking=None`` follows each
        member's task).
    seeds : int or sequence of int
        Seed of each member's code ``z``, input perturbation and default model.
    callbacks : iterable of callables
        As :func:`dipspec.fit`; the dict also holds ``"member"`` (the member's index), and a
        callback returning ``True`` ends that member's fit only.
    channels_last : bool
        Run the grouped convolutions in channels-last memory order (faster on CPUs).

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

    A member that stops early (``auto_stop`` or a callback) keeps its results from that
    iteration: its output, best image, history and weights are frozen there, while the batch
    carries on for the others (its columns still compute, unused) and ends when every member
    has stopped.

    Equivalence with sequential fits: the forward pass, the σ_max solve per kernel, the loss,
    Adam and the backtracking are the same operations per member. Only the grouped convolution
    (and the spatial means of the batch norm, in channels-last order) sums in another order, so
    the two runs agree to float rounding (about 1e-7 relative per step), which training then
    amplifies slowly; ``tests/test_batched.py`` pins the agreement.

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
    run_device = resolve_device(device)
    scale = resolve(preset, run_device)
    if iterations is None:
        iterations = min(min(t.default_iterations for t in task_list), scale.iterations)
    _check_loop(iterations, metrics_every, log_every, backtrack_every, auto_stop)
    if models is None:
        model_list = [_default_model(t, scale, s) for t, s in zip(task_list, seed_list)]
    else:
        model_list = list(models)
        if len(set(map(id, model_list))) != len(model_list):
            raise ValueError("fit_many got the same model object twice; build one model per fit")
    _check_architecture(model_list)
    if auto_stop and not all(_is_controlled(m) for m in model_list):
        warnings.warn("auto_stop without λ or σ control: plain DIP keeps changing as it fits "
                      "the noise, so the rule may stop late or never (SPEC §6)", stacklevel=2)
    sizes = {(t.output_size, t.channels, tuple(t.observation.shape)) for t in task_list}
    if len(sizes) > 1:
        raise ValueError(f"fit_many needs tasks of one size and channel count, got {sizes}; "
                         "resize the images to one size or fit them in separate calls")
    backtrack_on = [t.backtracking if backtracking is None else bool(backtracking)
                    for t in task_list]

    task_list = [t.to(run_device) for t in task_list]
    observations = torch.cat([t.observation.to(dtype) for t in task_list])
    references = torch.cat([t.reference.to(dtype) for t in task_list])
    has_clean = [t.clean is not None for t in task_list]
    height, width = task_list[0].output_size
    channels = task_list[0].channels
    # Members without a clean image get zeros here and NaN PSNR (as fit reports).
    cleans = torch.cat([t.clean.to(dtype) if t.clean is not None else
                        torch.zeros(1, channels, height, width, device=run_device, dtype=dtype)
                        for t in task_list]) if any(has_clean) else None
    with_ratio = _ratio_available(height, width, metrics_every, auto_stop)
    template = model_list[0]
    out_h, out_w = padded_size(height, width, template)
    top, left = (out_h - height) // 2, (out_w - width) // 2
    code_channels, code_h, code_w = template.input_shape(out_h, out_w)
    codes = [make_input(input_kind, code_channels, (code_h, code_w), seed=s).to(run_device, dtype)
             for s in seed_list]
    model_list = [m.to(run_device, dtype).train() for m in model_list]
    net = _GroupedNet(model_list, channels_last=channels_last,
                      split_convs=run_device.type == "cpu" and _widest_conv(template) > 64 * 64)
    params = net.parameters()
    optimizer = _adam(params, lr, member_params=list(template.parameters()))
    generators = [torch.Generator(device=run_device).manual_seed(s + 1) for s in seed_list]

    log_every = log_every or iterations
    columns = ["loss", "psnr"] + (["psnr_avg"] if ema else [])
    if metrics_every:
        columns += list(METRIC_COLUMNS)
    rows = _logged_iterations(iterations, log_every, keep_outputs)
    row_of = {it: i for i, it in enumerate(rows)}
    history = torch.full((k, len(rows), len(columns)), math.nan, device=run_device, dtype=dtype)
    ratio_col = columns.index("ratio") if metrics_every else None

    clean_mask = torch.tensor(has_clean, device=run_device)
    any_clean = any(has_clean)
    best = torch.zeros(k, channels, height, width, device=run_device,
                       dtype=dtype) if any_clean else None
    best_psnr = torch.full((k,), -math.inf, device=run_device, dtype=dtype)
    output_avg = None
    snapshot = None
    backtrack_mask = torch.tensor(backtrack_on, device=run_device)
    backtracks = torch.zeros(k, device=run_device, dtype=torch.int64)
    active = torch.ones(k, device=run_device, dtype=torch.bool)
    stoppers = [stopping.AutoStop(window=stop_window, eps=stop_eps) if auto_stop else None
                for _ in range(k)]
    callbacks = list(callbacks)
    keep = set(keep_outputs)
    snapshots: list[dict[int, Tensor]] = [{} for _ in range(k)]
    finished: dict[int, dict] = {}
    bar = _progress_bar(iterations, progress)
    started = time.perf_counter()

    def finish(member: int, it: int) -> None:
        task = task_list[member]
        net.copy_to(member, model_list[member])
        finished[member] = dict(
            last_iteration=it,
            output=task.finalize(out[member:member + 1]).cpu(),
            best=None if not has_clean[member] else
            task.finalize(best[member:member + 1]).cpu(),
            output_avg=None if output_avg is None else
            task.finalize(output_avg[member:member + 1]).cpu(),
            backtracks=int(backtracks[member]))

    for it in range(iterations):
        if reg_noise_std:
            codes_now = [z + reg_noise_std * torch.randn(z.shape, generator=g, device=run_device,
                                                         dtype=dtype)
                         for z, g in zip(codes, generators)]
        else:
            codes_now = codes
        output = net.forward(torch.cat(codes_now, dim=1))[:, :, top:top + height,
                                                           left:left + width]
        losses = torch.stack([F.mse_loss(task.A(output[m:m + 1]), observations[m:m + 1])
                              for m, task in enumerate(task_list)])
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()

        out = output.detach()
        if ema:
            if output_avg is None:
                output_avg = out.clone()
            else:  # the same arithmetic as fit; stopped members keep theirs
                output_avg = torch.where(active.view(-1, 1, 1, 1),
                                         output_avg.mul(ema).add_(out, alpha=1 - ema), output_avg)
        if any(backtrack_on) and it % backtrack_every == 0:
            snapshot = _backtrack_many(out, observations, params, optimizer, snapshot,
                                       backtracks, backtrack_mask & active)

        row = row_of.get(it)
        measure = metrics_every and it % metrics_every == 0
        if row is None and not measure:
            bar.update(1)
            continue
        psnr = _psnr_or_nan(out, cleans, clean_mask)
        values = [losses.detach(), psnr]
        if ema:
            values.append(_psnr_or_nan(output_avg, cleans, clean_mask))
        if measure:
            values.append(_instruments_many(out, _measured(out, task_list, references),
                                            references, with_ratio))
        vector = torch.cat([v.reshape(k, -1).to(dtype) for v in values], dim=1)  # (K, cols')
        if any_clean:
            better = (psnr > best_psnr) & active
            best = torch.where(better.view(-1, 1, 1, 1), out, best)
            best_psnr = torch.where(better, psnr, best_psnr)
        if row is None:  # measured but not logged: the stop rule still sees the ratio
            row = len(rows)
            rows.append(it)
            history = torch.cat([history, vector[:, None]], dim=1)
        else:
            history[:, row] = vector if measure else torch.cat(
                [vector, vector.new_full((k, len(columns) - vector.shape[1]), math.nan)], dim=1)
        live = [m for m in range(k) if m not in finished]
        if it in keep:
            for m in live:
                snapshots[m][it] = task_list[m].finalize(out[m:m + 1]).cpu()
        stops = set()
        if auto_stop and measure:
            ratios = history[:, row, ratio_col].tolist()
            stops = {m for m in live if stoppers[m].update(it, ratios[m])}
        if callbacks:
            table = history[:, row].tolist()
            for m in live:
                info = dict(zip(["iteration", *columns], [it, *table[m]]))
                info.update(output=out[m:m + 1], iterations=iterations, member=m)
                if any([bool(cb(info)) for cb in callbacks]):
                    stops.add(m)
        for m in sorted(stops):
            finish(m, it)
            active[m] = False
        bar.update(1)
        if len(finished) == k:
            break
    bar.close()
    for m in range(k):
        if m not in finished:
            finish(m, it)

    wall_time = time.perf_counter() - started
    results = []
    for m in range(k):
        done = finished[m]
        frame, stop_iteration = _history_frame(history[m], rows, columns, done["last_iteration"],
                                               bool(metrics_every), stop_window, stop_eps)
        results.append(FitResult(
            output=done["output"], best=done["best"], history=frame,
            stop_iteration=stop_iteration, task=task_list[m], model=model_list[m],
            snapshots=snapshots[m], output_avg=done["output_avg"],
            backtracks=done["backtracks"], wall_time=wall_time, device=str(run_device),
            seed=seed_list[m]))
    return results


def _measured(out: Tensor, tasks: list[Task], references: Tensor) -> Tensor:
    """What FBC compares with the observation: the output, or ``A(output)`` (super-resolution)."""
    if out.shape == references.shape:
        return out
    return torch.cat([task.A(out[m:m + 1]) for m, task in enumerate(tasks)])


def _psnr_or_nan(images: Tensor, cleans: Tensor | None, mask: Tensor) -> Tensor:
    if cleans is None:
        return torch.full((images.shape[0],), math.nan, device=images.device, dtype=images.dtype)
    psnr = metrics.psnr(images, cleans)
    return torch.where(mask, psnr, psnr.new_full((), math.nan))


def _instruments_many(out: Tensor, measured: Tensor, reference: Tensor,
                      with_ratio: bool) -> Tensor:
    """``(K, 8)``: FBC bands 1-5 of ``measured`` against the observation, blur, sharpness, ratio."""
    bands = spectral.fbc(measured, reference)
    if not with_ratio:
        return torch.cat([bands, bands.new_full((bands.shape[0], 3), math.nan)], dim=1)
    blur = stopping.blurriness(out)
    sharp = stopping.mlv_sharpness(out)
    return torch.cat([bands, torch.stack([blur, sharp, blur / sharp], dim=1)], dim=1)


def _backtrack_many(out: Tensor, observations: Tensor, params: list[Tensor],
                    optimizer: torch.optim.Optimizer, snapshot, backtracks: Tensor,
                    enabled: Tensor):
    """SPEC §7 for every member at once, device-side (as ``_fit._backtrack``, per member)."""
    state = [optimizer.state[p][key] for p in params for key in ("exp_avg", "exp_avg_sq")
             if p in optimizer.state]
    tensors = [p.data for p in params] + state
    psnr_obs = metrics.psnr(out, observations)
    if snapshot is None or len(snapshot[0]) != len(tensors):
        return [t.clone() for t in tensors], psnr_obs
    saved, saved_psnr = snapshot
    drop = (psnr_obs < saved_psnr - BACKTRACK_DROP_DB) & enabled
    for current, kept in zip(tensors, saved):
        restored = torch.where(drop.view(-1, *[1] * (current.ndim - 1)), kept, current)
        current.copy_(restored)
        kept.copy_(restored)
    backtracks += drop
    return saved, torch.where(drop, saved_psnr, psnr_obs)

