"""The engine: one loop that runs K ≥ 1 DIP fits (SPEC §1, §5–§7).

:func:`~dipspec.fit` is this engine with one member, :func:`~dipspec.fit_many` with K, so each
feature of the loop (the step, the instruments, backtracking, output averaging, the stop rule,
callbacks, the history) exists once, here. Everything per iteration stays on the device: the
instruments return ``(K, …)`` tensors written into a device-side history, the oracle image and
the backtracking snapshot are updated with ``torch.where`` rather than host decisions, and the
host reads values only when it logs (callbacks, the progress bar, the stop rule) or at the end.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor, nn

from ..measure import StopRule, first_stop_iteration
from ..nn import make_input
from ..tasks import Task
from .checkpoint import Checkpointer
from .grouped import GroupedNet, widest_conv
from .instruments import Instruments, backtrack, measured, psnr_or_nan
from .interrupts import FitInterrupted, interrupt_trap
from .result import METRIC_COLUMNS, FitResult
from .single import Crop, SingleNet, padded_size
from .stops import MemberRules, resolve_stop_rules

__all__ = ["FUSED_ADAM_MIN_NUMEL", "Settings", "adam", "logged_iterations", "run"]


@dataclass(frozen=True)
class Settings:
    """The loop's settings, shared by every member (see :func:`dipspec.fit` for each)."""

    iterations: int
    lr: float = 1e-3
    input_kind: str = "fourier"
    reg_noise_std: float = 0.0
    ema: float | None = None
    backtrack_every: int = 10
    log_every: int = 1
    metrics_every: int = 1
    auto_stop: bool = False
    stop_window: int = 100
    stop_eps: float = 0.01
    stop_rule: str | StopRule | None = None
    keep_outputs: tuple[int, ...] = ()
    progress: bool | None = None
    dtype: torch.dtype = torch.float32
    channels_last: bool = True
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    precision: str = "fp32"


#: Parameters of at least this many elements make a fit use PyTorch's fused Adam.
FUSED_ADAM_MIN_NUMEL = 1 << 22


def adam(params: Iterable[Tensor], lr: float,
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


def logged_iterations(iterations: int, log_every: int, keep_outputs: Sequence[int]) -> list[int]:
    """Iterations with a history row: every ``log_every``-th, the last, and the kept ones."""
    outside = [i for i in keep_outputs if not 0 <= i < iterations]
    if outside:
        raise ValueError(f"keep_outputs {outside} lie outside the fit's iterations "
                         f"0..{iterations - 1}")
    return sorted(set(range(0, iterations, log_every)) | {iterations - 1}
                  | {int(i) for i in keep_outputs})


class _History:
    """The device-side history of K members: one row per logged or measured iteration."""

    def __init__(self, k: int, settings: Settings, device: torch.device) -> None:
        self.columns = ["loss", "psnr"] + (["psnr_avg"] if settings.ema else [])
        if settings.metrics_every:
            self.columns += list(METRIC_COLUMNS)
        log_every = settings.log_every or settings.iterations
        self.rows = logged_iterations(settings.iterations, log_every, settings.keep_outputs)
        self.row_of = {it: i for i, it in enumerate(self.rows)}
        self.table = torch.full((k, len(self.rows), len(self.columns)), math.nan, device=device,
                                dtype=settings.dtype)
        self.settings = settings

    def record(self, it: int, vector: Tensor) -> int:
        """Write the ``(K, n)`` readings of ``it`` (NaN-padded when not measured); its row."""
        k, width = self.table.shape[0], len(self.columns)
        if vector.shape[1] < width:
            vector = torch.cat([vector, vector.new_full((k, width - vector.shape[1]), math.nan)],
                               dim=1)
        row = self.row_of.get(it)
        if row is None:  # measured but not logged: the stop rule still sees the ratio
            row = len(self.rows)
            self.rows.append(it)
            self.table = torch.cat([self.table, vector[:, None]], dim=1)
        else:
            self.table[:, row] = vector
        return row

    def frame(self, member: int, last_iteration: int) -> tuple[pd.DataFrame, int | None]:
        """``FitResult.history`` of one member (rows in iteration order, up to
        ``last_iteration``), and where the stopping rule (SPEC §6) fires on it."""
        order = sorted(range(len(self.rows)), key=self.rows.__getitem__)
        frame = pd.DataFrame(self.table[member, order].cpu().double().numpy(),
                             columns=self.columns)
        frame.insert(0, "iteration", [self.rows[i] for i in order])
        frame = frame[frame["iteration"] <= last_iteration].reset_index(drop=True)
        if not self.settings.metrics_every:
            return frame, None
        ratios = frame.dropna(subset=["ratio"])
        stop = first_stop_iteration(ratios["ratio"].to_numpy().copy(),
                                    window=self.settings.stop_window, eps=self.settings.stop_eps,
                                    iterations=ratios["iteration"].to_numpy().copy())
        return frame, None if stop is None else int(stop)


class _Members:
    """The K members' data on the device: observations, references, clean images, codes."""

    def __init__(self, tasks: list[Task], seeds: list[int], model: nn.Module,
                 settings: Settings, device: torch.device) -> None:
        dtype = settings.dtype
        self.tasks = [t.to(device) for t in tasks]
        self.k = len(tasks)
        self.observations = torch.cat([t.observation.to(dtype) for t in self.tasks])
        self.references = torch.cat([t.reference.to(dtype) for t in self.tasks])
        self.has_clean = torch.tensor([t.clean is not None for t in self.tasks], device=device)
        height, width = self.tasks[0].output_size
        channels = self.tasks[0].channels
        # Members without a clean image get zeros here and NaN PSNR.
        self.cleans = torch.cat([
            t.clean.to(dtype) if t.clean is not None else
            torch.zeros(1, channels, height, width, device=device, dtype=dtype)
            for t in self.tasks]) if bool(self.has_clean.any()) else None
        self.crop = Crop.centred(height, width, model)
        code_channels, code_h, code_w = model.input_shape(*padded_size(height, width, model))
        self.codes = [make_input(settings.input_kind, code_channels, (code_h, code_w),
                                 seed=s).to(device, dtype) for s in seeds]
        self.reg_noise_std = settings.reg_noise_std

    def code(self, generators: list[torch.Generator]) -> Tensor:
        """The network input of this step: each member's ``z``, perturbed (``reg_noise_std``)."""
        codes = self.codes
        if self.reg_noise_std:
            codes = [z + self.reg_noise_std * torch.randn(z.shape, generator=g, device=z.device,
                                                          dtype=z.dtype)
                     for z, g in zip(codes, generators)]
        return codes[0] if self.k == 1 else torch.cat(codes, dim=1)



@dataclass
class _State:
    """Everything of a run that changes from one iteration to the next (what a checkpoint
    holds besides the network, Adam and the generators)."""

    log: _History
    best: Tensor | None
    best_psnr: Tensor
    backtracks: Tensor
    active: Tensor
    rules: MemberRules | None  # the stop rule, one copy per member
    next: int = 0  # the next iteration to run
    out: Tensor | None = None  # the output of the last completed iteration
    output_avg: Tensor | None = None
    snapshot: tuple | None = None  # backtracking: saved tensors and PSNR
    snapshots: list[dict[int, Tensor]] = field(default_factory=list)
    finished: dict[int, dict] = field(default_factory=dict)  # member -> frozen result fields
    last: dict[int, int] = field(default_factory=dict)  # member -> its last iteration
    diverged: set[int] = field(default_factory=set)
    elapsed: float = 0.0  # seconds of work before this run (a resumed fit's earlier runs)

    @classmethod
    def fresh(cls, members: _Members, settings: Settings, device: torch.device) -> _State:
        k = members.k
        rules = resolve_stop_rules(settings.stop_rule, settings.auto_stop,
                                   settings.stop_window, settings.stop_eps, members.tasks)
        return cls(
            log=_History(k, settings, device),
            best=None if members.cleans is None else torch.zeros_like(members.cleans),
            best_psnr=torch.full((k,), -math.inf, device=device, dtype=settings.dtype),
            backtracks=torch.zeros(k, device=device, dtype=torch.int64),
            active=torch.ones(k, device=device, dtype=torch.bool),
            rules=None if rules is None else MemberRules(rules, members.observations),
            snapshots=[{} for _ in range(k)])


def run(tasks: list[Task], models: list[nn.Module], seeds: list[int], backtrack_on: list[bool],
        settings: Settings, device: torch.device,
        callbacks: Iterable[Callable[[dict], bool | None]] = (),
        with_ratio: bool = True, *, face: str = "fit",
        resume: dict | None = None) -> list[FitResult]:
    """Run K fits, checked and resolved by :func:`dipspec.fit` / :func:`dipspec.fit_many`.

    One member runs its model as it is (:class:`~dipspec.fitting.single.SingleNet`), K > 1
    members as one grouped network (:class:`~dipspec.fitting.grouped.GroupedNet`); the loop is
    the same. A member that stops (the rule or a callback) is frozen at that iteration while
    the others carry on; the run ends when every member has stopped. ``resume`` is a
    checkpoint's payload to continue from (:func:`dipspec.fitting.resume`).
    """
    s, k, dtype = settings, len(tasks), settings.dtype
    members = _Members(tasks, seeds, models[0], s, device)
    models = [m.to(device, dtype).train() for m in models]
    # each member's own generator: input perturbation, then pixel minibatches
    generators = [torch.Generator(device=device).manual_seed(seed + 1) for seed in seeds]
    net = _network(models, members, generators, s, device)
    params = net.parameters()
    optimizer = adam(params, s.lr, net.member_parameters())
    st = _State.fresh(members, s, device)
    if resume is not None:
        st = _restore(resume, net, optimizer, generators)
    saver = Checkpointer(s.checkpoint, s.checkpoint_every)
    spec = dict(face=face, tasks=tasks, models=models, seeds=seeds, backtrack_on=backtrack_on,
                settings=s, device=str(device), with_ratio=with_ratio)

    def save() -> str | None:
        before = st.elapsed
        st.elapsed = before + time.perf_counter() - started  # the checkpoint's work so far
        try:
            return saver.write(dict(spec, state=st, net=net.state_dict(),
                                    optimizer=optimizer.state_dict(),
                                    generators=[g.get_state() for g in generators]))
        finally:
            st.elapsed = before

    def finish(m: int, it: int) -> None:  # freeze member m's results at iteration it
        task = members.tasks[m]
        net.copy_to(m, models[m])
        st.last[m] = it
        # a rule that detected an earlier iteration (ES-WMV, ES-EMV) returns that output
        detected = None if st.rules is None else st.rules.detected_output(m)
        st.finished[m] = dict(
            output=task.finalize(st.out[m:m + 1] if detected is None else detected).cpu(),
            best=None if st.best is None or not members.has_clean[m] else
            task.finalize(st.best[m:m + 1]).cpu(),
            output_avg=None if st.output_avg is None else
            task.finalize(st.output_avg[m:m + 1]).cpu(),
            backtracks=int(st.backtracks[m]))

    callbacks, keep = list(callbacks), set(s.keep_outputs)
    autocast = (functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)
                if s.precision == "bf16" else contextlib.nullcontext)
    backtrack_mask = torch.tensor(backtrack_on, device=device)
    meters = Instruments(members.references, with_ratio)
    bar = _progress_bar(s.iterations, s.progress, st.next)
    started = time.perf_counter()
    try:
        with interrupt_trap() as trap:
            # long on purpose: one loop (nanoGPT style), every feature top to bottom, in order
            for it in range(st.next, s.iterations):
                measure = bool(s.metrics_every) and it % s.metrics_every == 0
                check = any(backtrack_on) and it % s.backtrack_every == 0
                with autocast():  # bf16: the network in bfloat16, all else in ``dtype``
                    output, losses = net.step(members.code(generators),
                                              needs_image=it in st.log.row_of or measure or check)
                output = output.to(dtype)
                if it == st.next == 0:
                    _check_channels(output, members.observations, members.tasks)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                optimizer.step()

                out = output.detach()
                if s.ema:  # stopped members keep their average
                    st.output_avg = out.clone() if st.output_avg is None else torch.where(
                        st.active.view(-1, 1, 1, 1),
                        st.output_avg.mul(s.ema).add_(out, alpha=1 - s.ema), st.output_avg)
                if check:
                    st.snapshot = backtrack(out, members.observations, params, optimizer,
                                            st.snapshot, st.backtracks,
                                            backtrack_mask & st.active)
                stops = set()
                if it in st.log.row_of or measure:
                    psnr = psnr_or_nan(out, members.cleans, members.has_clean)
                    readings = [losses.detach(), psnr]
                    if s.ema:
                        readings.append(psnr_or_nan(st.output_avg, members.cleans,
                                                    members.has_clean))
                    if measure:
                        readings.append(meters(out, measured(out, members.tasks,
                                                             members.references)))
                    row = st.log.record(it, torch.cat([r.reshape(k, -1).to(dtype)
                                                       for r in readings], dim=1))
                    if st.best is not None:  # the oracle: each member's best output so far
                        better = (psnr > st.best_psnr) & st.active
                        st.best = torch.where(better.view(-1, 1, 1, 1), out, st.best)
                        st.best_psnr = torch.where(better, psnr, st.best_psnr)
                    live = [m for m in range(k) if m not in st.finished]
                    if it in keep:
                        for m in live:
                            st.snapshots[m][it] = members.tasks[m].finalize(
                                out[m:m + 1]).cpu()
                    stops = _stops(it, row, live, st.log, st.rules, callbacks, out)
                    _show_psnr(bar, st.log, row, members.has_clean)
                if it % DIVERGENCE_EVERY == 0 or it == s.iterations - 1:
                    # one host read every so often: NaN weights stay NaN, nothing is missed
                    bad = (~torch.isfinite(losses.detach())).tolist()
                    st.diverged |= {m for m in range(k) if bad[m] and m not in st.finished}
                    stops |= st.diverged - set(st.finished)
                st.out = out
                for m in sorted(stops):
                    finish(m, it)
                    st.active[m] = False
                st.next = it + 1
                bar.update(1)
                if len(st.finished) == k:
                    break
                if trap.reason:  # Ctrl-C or SIGTERM, heard at the end of an iteration
                    raise _StopRequested(trap.reason)
                if saver.due(st.next):
                    save()
    except KeyboardInterrupt as exc:
        bar.close()
        # at the end of an iteration the state is consistent: save it; mid-iteration it is
        # not, and the last periodic checkpoint stays the one to resume from
        requested = isinstance(exc, _StopRequested)
        where = save() if requested else None
        reason = exc.reason if requested else "KeyboardInterrupt"
        results = [] if st.out is None else _results(st, members, models, seeds, device,
                                                     finish, started, interrupted=True)
        raise FitInterrupted(results, st.next - 1, reason, where) from exc
    bar.close()
    return _results(st, members, models, seeds, device, finish, started)


#: Iterations between the host's checks that every loss is finite.
DIVERGENCE_EVERY = 50


def _results(st: _State, members: _Members, models: list[nn.Module], seeds: list[int],
             device: torch.device, finish, started: float,
             interrupted: bool = False) -> list[FitResult]:
    """Each member's :class:`FitResult`, freezing the live ones at the last completed
    iteration."""
    for m in range(members.k):
        if m not in st.finished:
            finish(m, st.next - 1)
    wall_time = st.elapsed + time.perf_counter() - started
    results = []
    for m in range(members.k):
        frame, stop = st.log.frame(m, st.last[m])
        rule = {"stop_iteration": stop} if st.rules is None else st.rules.report(m)
        results.append(FitResult(history=frame, task=members.tasks[m], model=models[m],
                                 snapshots=st.snapshots[m], wall_time=wall_time,
                                 device=str(device), seed=seeds[m], interrupted=interrupted,
                                 diverged=m in st.diverged, **rule, **st.finished[m]))
    return results


def _check_channels(output: Tensor, observations: Tensor, tasks: list[Task]) -> None:
    """Before the first update: the network must produce the task's channel count."""
    if output.shape[1] != tasks[0].channels:
        raise ValueError(f"the model produces {output.shape[1]}-channel images but the task's "
                         f"images have {tasks[0].channels} channel(s); build the model with "
                         f"out_channels={tasks[0].channels} (or leave model=None: the default "
                         "decoder follows the task)")


def _restore(payload: dict, net, optimizer: torch.optim.Optimizer,
             generators: list[torch.Generator]) -> _State:
    """A checkpoint's state put back into the freshly built network, Adam and generators."""
    net.load_state_dict(payload["net"])
    optimizer.load_state_dict(payload["optimizer"])
    for generator, state in zip(generators, payload["generators"]):
        generator.set_state(state)
    return payload["state"]


class _StopRequested(KeyboardInterrupt):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _stops(it: int, row: int, live: list[int], log: _History, rules: MemberRules | None,
           callbacks: list[Callable[[dict], bool | None]], out: Tensor) -> set[int]:
    """The live members that end at ``it``: the stop rule fired, or a callback said so."""
    stops = set()
    if not (rules or callbacks):
        return stops
    table = log.table[:, row].tolist()  # one host read for the rules and the callbacks
    if rules:
        stops = rules.update(it, log.columns, table, live, out)
    if callbacks:
        for m in live:
            info = dict(zip(["iteration", *log.columns], [it, *table[m]]))
            info.update(output=out[m:m + 1], iterations=log.settings.iterations, member=m)
            if any([bool(cb(info)) for cb in callbacks]):  # a list: every callback runs
                stops.add(m)
    return stops


def _network(models: list[nn.Module], members: _Members, generators: list[torch.Generator],
             settings: Settings, device: torch.device) -> SingleNet | GroupedNet:
    """The model itself for one member; K decoders as one grouped network otherwise."""
    if len(models) == 1:
        return SingleNet(models[0], members.tasks[0], members.observations, members.crop,
                         generators[0], averaging=bool(settings.ema),
                         channels_last=settings.channels_last)
    # On a CPU a wide grouped convolution runs slower than one convolution per member.
    split = device.type == "cpu" and widest_conv(models[0]) > 64 * 64
    return GroupedNet(models, channels_last=settings.channels_last, split_convs=split,
                      crop=members.crop, tasks=members.tasks, observations=members.observations)


def _show_psnr(bar, log: _History, row: int, has_clean: Tensor) -> None:
    """The progress bar's PSNR, about 50 times per fit (each read syncs with the device)."""
    if isinstance(bar, _NoBar) or not bool(has_clean.any()):
        return
    if row % max(1, len(log.rows) // 50) == 0:
        value = log.table[has_clean, row, 1].max().item()
        bar.set_postfix(psnr=f"{value:.2f}")


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars are on unless ``progress=False`` or ``$DIPSPEC_PROGRESS`` is ``0``."""
    if progress is None:
        return os.environ.get("DIPSPEC_PROGRESS", "1") != "0"
    return bool(progress)


def _progress_bar(total: int, enabled: bool | None, done: int = 0):
    if not progress_enabled(enabled):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="fit", leave=False, mininterval=1.0)
