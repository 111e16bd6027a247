"""Restoration tasks: a degradation ``degrade(x, generator) -> y`` and an operator ``A(x)``.

A task knows no network. The fitting loop forms ``mean((task.A(f(z)) - task.observation) ** 2)``
and shows the user ``task.finalize(f(z))`` (SPEC §1, §8). Every degradation is also available
as a pure function (`add_gaussian_noise`, `jpeg_compress`, `bernoulli_mask`,
`lanczos2_downsample`, `enhance_details`). This is the physics layer: one module per family
(`denoise`, `deblock`, `inpaint`, `super_resolve`, `enhance`) beside the base class (`base`).

Examples
--------
>>> import torch
>>> x = torch.rand(1, 3, 32, 32)
>>> task = make_task("denoise", clean=x, seed=0)
>>> task.observation.shape, task.output_size
(torch.Size([1, 3, 32, 32]), (32, 32))
>>> bool(torch.equal(task.A(x), x))
True
"""

from __future__ import annotations

from typing import Any

from .base import Task
from .deblock import Deblock, jpeg_compress
from .denoise import Denoise, add_gaussian_noise
from .enhance import Enhance, enhance_details
from .inpaint import Inpaint, bernoulli_mask
from .super_resolve import SuperResolve, lanczos2_downsample, lanczos2_kernel

__all__ = [
    "TASKS",
    "Deblock",
    "Denoise",
    "Enhance",
    "Inpaint",
    "SuperResolve",
    "Task",
    "add_gaussian_noise",
    "bernoulli_mask",
    "enhance_details",
    "jpeg_compress",
    "lanczos2_downsample",
    "lanczos2_kernel",
    "make_task",
]

TASKS: dict[str, type[Task]] = {
    "denoise": Denoise,
    "deblock": Deblock,
    "inpaint": Inpaint,
    "super_resolve": SuperResolve,
    "enhance": Enhance,
}

_ALIASES = {
    "denoising": "denoise",
    "deblocking": "deblock",
    "jpeg": "deblock",
    "inpainting": "inpaint",
    "super_resolution": "super_resolve",
    "superresolution": "super_resolve",
    "sr": "super_resolve",
    "enhancement": "enhance",
}


def make_task(name: str, **kwargs: Any) -> Task:
    """Build a task by name.

    Parameters
    ----------
    name : str
        One of ``TASKS`` (``'denoise'``, ``'deblock'``, ``'inpaint'``, ``'super_resolve'``,
        ``'enhance'``); the paper's folder names (``'denoising'``, …) are accepted too.
    **kwargs
        Passed to the task class (``clean=``, ``observation=``, ``seed=`` and its parameters).

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).

    Examples
    --------
    >>> make_task("super_resolve", factor=2).factor
    2
    """
    key = str(name).lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[key](**kwargs)
