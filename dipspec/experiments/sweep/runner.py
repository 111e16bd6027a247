"""One batch of a sweep: build its tasks and models, fit them, summarise each fit in a row.

:func:`run_batch` is what an engine runs — in this process (``local``) or as a Ray task on
any machine of a cluster (``ray``). It takes plain data (the members' full configurations and
their clean images) and returns plain data (a row and a history per member), so it needs no
file system shared with the driver.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ...fitting import FitResult, fit, fit_many
from ...fitting.interrupts import FitDiverged
from ...measure import psnr
from ...nn import ConvNet, Decoder, LinearDIP, retain_freed_memory
from ...presets import resolve_device
from ...tasks import Task, make_task
from ..chakrabarty.common import build_architecture
from ..provenance import commit
from .keys import is_groupable

__all__ = ["RESULT_COLUMNS", "build_model", "build_task", "run_batch", "run_batch_task",
           "summarise"]

#: What a sweep's table says of each fit, beside its configuration.
RESULT_COLUMNS = ("peak_psnr", "peak_iteration", "final_psnr", "final_iteration",
                  "stop_iteration", "stop_psnr", "stopped_at", "observation_psnr", "diverged",
                  "backtracks", "wall_time_s", "batch", "device", "host", "commit")

#: Each task's own key in a configuration, and the task's argument it sets.
_TASK_PARAMETERS = {"denoise": ("noise_sigma", "sigma"), "deblock": ("quality", "quality"),
                    "super_resolve": ("factor", "factor"), "inpaint": ("keep", "keep")}


def build_task(config: Mapping, clean: Tensor) -> Task:
    """The degraded observation of one configuration (seeded by its ``seed``)."""
    options = {}
    if config["task"] in _TASK_PARAMETERS:
        key, argument = _TASK_PARAMETERS[config["task"]]
        # the noise σ is given in 8-bit units, as `dipspec run --noise-sigma` takes it
        options[argument] = config[key] / 255 if key == "noise_sigma" else config[key]
    return make_task(config["task"], clean=clean, seed=config["seed"], **options)


def build_model(config: Mapping, task: Task) -> tuple[nn.Module, str]:
    """``(network, input kind)`` of one configuration, initialised with its ``seed``."""
    model, seed, channels = config["model"], config["seed"], config["channels"]
    if model == "decoder":
        options = ({"gaussian_sigma": config["gaussian_sigma"]}
                   if config["upsample"] == "gaussian" else {})
        return Decoder(out_channels=task.channels, channels=channels,
                       lipschitz_lambda=config["lipschitz_lambda"], upsample=config["upsample"],
                       seed=seed, **options), "fourier"
    if model == "convnet":
        return ConvNet(out_channels=task.channels, channels=channels,
                       lipschitz_lambda=config["lipschitz_lambda"], seed=seed), "fourier"
    return build_architecture(model, task.output_size, task.channels, seed=seed,
                              dip_channels=channels or 128)


def _loop(config: Mapping, device: torch.device) -> dict:
    """The keyword arguments of ``fit`` / ``fit_many`` that every member of a batch shares."""
    rule = config["stop_rule"]
    return dict(iterations=config["iterations"], lr=config["lr"], device=device,
                preset=config["preset"], precision=config["precision"],
                dtype=getattr(torch, config["dtype"]), backtracking=config["backtracking"],
                log_every=config["log_every"], metrics_every=config["metrics_every"],
                stop_rule=None if rule in (None, "auto") else rule, auto_stop=rule == "auto",
                progress=False)


def run_batch(configs: Sequence[Mapping], images: Sequence[Tensor],
              device: str | torch.device = "auto") -> list[dict]:
    """Fit one batch: ``fit_many`` for the decoder and the convnet, ``fit`` otherwise.

    Parameters
    ----------
    configs : sequence of mapping
        The members' full configurations (:func:`~dipspec.experiments.sweep.keys.resolve`),
        compatible (:func:`~dipspec.experiments.sweep.plan.group_key`).
    images : sequence of Tensor
        Each member's clean image, ``(1, C, H, W)``.
    device : str or torch.device
        ``"auto"``: the GPU when this process has one (a Ray task given a GPU), else the CPU.

    Returns
    -------
    list of dict
        Per member: ``"row"`` (:data:`RESULT_COLUMNS`) and ``"history"`` (a DataFrame, one row
        per logged iteration).
    """
    run_device = resolve_device(device)
    tasks = [build_task(c, image) for c, image in zip(configs, images, strict=True)]
    built = [build_model(c, t) for c, t in zip(configs, tasks)]
    models, kinds = [m for m, _ in built], {k for _, k in built}
    loop = _loop(configs[0], run_device)
    if any(isinstance(m, LinearDIP) for m in models):
        retain_freed_memory()  # its steps are 3-4x faster on a CPU (dipspec.nn.baselines)
    if len(models) > 1 or is_groupable(configs[0]["model"]):
        results = fit_many(tasks, models, seeds=[c["seed"] for c in configs],
                           input_kind=kinds.pop(), **loop)
    else:
        try:
            results = [fit(tasks[0], models[0], seed=configs[0]["seed"], input_kind=kinds.pop(),
                           **loop)]
        except FitDiverged as err:
            results = [err.result]
    code = commit()
    return [{"row": summarise(result, task, len(results), code), "history": result.history}
            for result, task in zip(results, tasks)]


def run_batch_task(configs: Sequence[Mapping], device: str, *images: Tensor) -> list[dict]:
    """:func:`run_batch` with the images as separate arguments (a Ray task's form: Ray hands
    each top-level object reference over as its value)."""
    return run_batch(configs, images, device)


def summarise(result: FitResult, task: Task, batch: int, code: str = "unknown") -> dict:
    """One fit's row: peak PSNR and where, final PSNR, the stop and its PSNR, time, device."""
    history = result.history
    finite = history["psnr"].notna().any()
    peak_iteration, peak = result.peak("psnr") if finite else (None, math.nan)
    last = history.iloc[-1]
    stop = result.stop_iteration
    observation = task.observation
    observed = (float(psnr(observation, task.clean)[0])
                if task.clean is not None and observation.shape == task.clean.shape else math.nan)
    return {"peak_psnr": float(peak), "peak_iteration": peak_iteration,
            "final_psnr": float(last["psnr"]), "final_iteration": int(last["iteration"]),
            "stop_iteration": None if stop is None else int(stop),
            "stop_psnr": math.nan if stop is None else float(result.at(stop)["psnr"]),
            "stopped_at": None if result.stopped_at is None else int(result.stopped_at),
            "observation_psnr": observed, "diverged": bool(result.diverged),
            "backtracks": int(result.backtracks), "wall_time_s": round(result.wall_time, 3),
            "batch": batch, "device": str(result.device), "host": platform.node(),
            "commit": code}

