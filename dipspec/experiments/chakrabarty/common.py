"""What every experiment of Chakrabarty & Maji shares: the architectures and their learning
rates, the plain DIP fit, and a notebook's set-up.

The DIP of these experiments is the encoder–decoder (:class:`~dipspec.nn.SkipNet`) with
Chakrabarty & Maji's changes: zero padding, Adam at 1e-3, a white-noise code with the image's
shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ...fitting import FitResult, fit
from ...nn import LinearDIP, ReLUNet, SkipNet
from ...presets import resolve, resolve_device
from ...tasks import Task

__all__ = ["ARCHITECTURES", "LEARNING_RATES", "build_architecture", "setup"]


#: The rows of the architecture table, in the poster's order.
ARCHITECTURES = ("DIP", "DIP Linear-128", "DIP Linear-2048", "ReLUNet")


#: Adam learning rate of each architecture: 1e-3 (Chakrabarty & Maji) except DIP Linear-2048,
#: which at 1e-3 drives its sigmoid into saturation within ten steps and stays there (House
#: ÷4: PSNR 13.5 → 7.3 dB, no recovery in 150 steps); at 1e-4 it trains (20.4 dB by step 37).
LEARNING_RATES = {"DIP": 1e-3, "DIP Linear-128": 1e-3, "DIP Linear-2048": 1e-4, "ReLUNet": 1e-3}


def build_architecture(name: str, image_size: tuple[int, int], channels: int = 3, seed: int = 0,
                       dip_channels: int = 128, dip_scales: int = 5
                       ) -> tuple[nn.Module, str]:
    """``(model, input_kind)`` of one of :data:`ARCHITECTURES` for an ``image_size`` image.

    ``"DIP"`` is :class:`~dipspec.nn.SkipNet` with zero padding, ``dip_channels`` wide,
    ``dip_scales`` scales, fed white noise with the image's channels (``input_kind="noise"``);
    ``"DIP Linear-128"``/``"DIP Linear-2048"`` are :class:`~dipspec.nn.LinearDIP` fed
    white noise of the image's shape; ``"ReLUNet"`` is fed the coordinate grid.

    Examples
    --------
    >>> model, kind = build_architecture("ReLUNet", (8, 8), channels=1)
    >>> type(model).__name__, kind
    ('ReLUNet', 'meshgrid')
    """
    if name == "DIP":
        return SkipNet(in_channels=channels, out_channels=channels, channels=dip_channels,
                       scales=dip_scales, padding_mode="zeros", seed=seed), "noise"
    if name.startswith("DIP Linear-"):
        width = int(name.removeprefix("DIP Linear-"))
        return LinearDIP(width, image_size, out_channels=channels, seed=seed), "noise"
    if name == "ReLUNet":
        return ReLUNet(out_channels=channels, seed=seed), "meshgrid"
    raise ValueError(f"unknown architecture {name!r}; choose one of {ARCHITECTURES}")


def _dip_fit(task: Task, seed: int, iterations: int, channels: int, scales: int,
             keep_every: int = 0, device: str | torch.device = "cpu", lr: float = 1e-3,
             metrics_every: int = 0) -> FitResult:
    """One plain (uncontrolled, no backtracking) DIP fit of Chakrabarty & Maji."""
    height, width = task.output_size
    model, kind = build_architecture("DIP", (height, width), task.channels, seed=seed,
                                     dip_channels=channels, dip_scales=scales)
    keep = range(0, iterations, keep_every) if keep_every else ()
    return fit(task, model=model, iterations=iterations, lr=lr, seed=seed, device=device,
               input_kind=kind, backtracking=False, metrics_every=metrics_every,
               log_every=keep_every or 1, keep_outputs=keep, progress=False)


def setup(preset: str, quick: Mapping, paper: Mapping, seed: int = 0) -> dict:
    """The settings of a notebook: ``quick`` or ``paper`` by the resolved preset, seeded.

    ``preset`` is ``"auto"`` (paper on a GPU, quick on a CPU), ``"quick"`` or ``"paper"``.
    Seeds torch globally (notebooks only) and returns the chosen settings plus ``scale`` (the
    preset's name) and ``device``.

    Examples
    --------
    >>> setup("quick", {"size": 32}, {"size": 256})["size"]
    32
    """
    device = resolve_device("auto")
    chosen = resolve(preset, device)
    torch.manual_seed(seed)
    settings = dict(paper if chosen.name == "paper" else quick)
    settings.update(scale=chosen.name, device=str(device))
    return settings
