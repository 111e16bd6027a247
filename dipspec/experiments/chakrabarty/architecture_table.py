"""Notebook 11 and ``dipspec table architectures``: the architecture table. Oracle denoising PSNR
of DIP, DIP Linear-128/2048 and ReLUNet on the paper's denoising images
(:func:`architecture_table`), summarised as mean ± std over seeds (:func:`summarise_table`),
and the findings read from its rows (:func:`best_is`, :func:`beats`, :func:`gain_over_noisy`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from ... import data
from ...fitting import fit
from ...measure import psnr
from ...presets import Preset, resolve_device
from ...tasks import Denoise
from .. import fallback
from .common import ARCHITECTURES, LEARNING_RATES, build_architecture

__all__ = [
    "architecture_table",
    "beats",
    "best_is",
    "gain_over_noisy",
    "image_label",
    "summarise_table",
    "table_images",
]


def table_images(factor: int = 4, names: Sequence[str] | None = None, *,
                 preset: str | Preset | None = None) -> dict[str, Tensor]:
    """The nine denoising images of the paper data, downsampled by ``factor`` (both sides).

    Names are the file stems (``image_Baboon512rgb`` …); ``names`` selects by substring. With
    ``preset="quick"`` an unreachable image is replaced by its embedded stand-in, with one
    printed line (:mod:`dipspec.experiments.fallback`); otherwise the error is raised.
    """
    images = {}
    for relpath in data.paper_images("denoising"):
        stem = Path(relpath).stem
        if names and not any(n.lower() in stem.lower() for n in names):
            continue
        full = fallback.paper_image(relpath, preset=preset)
        height, width = full.shape[-2:]
        images[stem] = fallback.paper_image(relpath, size=(height // factor, width // factor),
                                            preset=preset)
    if not images:
        raise ValueError(f"no denoising image matches {list(names or [])}; the names are "
                         f"{[Path(p).stem for p in data.paper_images('denoising')]}")
    return images


def architecture_table(images: Mapping[str, Tensor], seeds: Sequence[int] = (0, 1, 2),
                       iterations: Mapping[str, int] | int = 2000,
                       architectures: Sequence[str] = ARCHITECTURES, sigma: float = 25 / 255,
                       dip_channels: int = 128, device: str | torch.device = "cpu",
                       log_every: int = 1) -> pd.DataFrame:
    """Oracle denoising PSNR of each architecture, image and seed (Chakrabarty & Maji's table).

    The noise of image ``i`` and seed ``s`` is drawn with seed ``s`` and is the same for every
    architecture; the network's initialisation and code use seed ``s`` too. PSNR is the best
    over the trajectory, against the clean image, read every ``log_every`` iterations (1: every
    iterate; more skips ReLUNet's whole-image pass on the other steps, several times cheaper).
    Plain DIP: no backtracking, no λ or σ control; Adam with :data:`LEARNING_RATES`.
    (``dipspec table architectures`` runs the same fits, resumably, as the shipped sweep spec
    ``architectures``.)

    Returns
    -------
    pandas.DataFrame
        Columns: image, architecture, seed, iterations, lr, psnr (best), best_iteration,
        noisy_psnr, wall_time_s.
    """
    run_device = resolve_device(device)
    rows = []
    for name, clean in images.items():
        for seed in seeds:
            task = Denoise(sigma, clean=clean, seed=seed)
            noisy = float(psnr(task.observation, clean)[0])
            for arch in architectures:
                its = iterations if isinstance(iterations, int) else iterations[arch]
                lr = LEARNING_RATES.get(arch, 1e-3)
                row = _table_fit(task, arch, its, lr, seed, dip_channels, run_device,
                                 log_every)
                row = dict(image=name, architecture=arch, seed=seed, iterations=its, lr=lr,
                           noisy_psnr=noisy, **row)
                rows.append(row)
    columns = ["image", "architecture", "seed", "iterations", "lr", "psnr", "best_iteration",
               "noisy_psnr", "wall_time_s"]
    return pd.DataFrame(rows, columns=columns)


def _table_fit(task: Denoise, arch: str, iterations: int, lr: float, seed: int,
               dip_channels: int, device: torch.device, log_every: int) -> dict:
    """One fit of the table: its best PSNR, where it was reached, and its wall time."""
    model, kind = build_architecture(arch, task.output_size, task.channels, seed=seed,
                                     dip_channels=dip_channels)
    result = fit(task, model=model, iterations=iterations, lr=lr, seed=seed, device=device,
                 input_kind=kind, backtracking=False, metrics_every=0, log_every=log_every,
                 progress=False)
    best_iteration, best = result.peak("psnr")
    return dict(psnr=best, best_iteration=best_iteration,
                wall_time_s=round(result.wall_time, 2))


def image_label(stem: str) -> str:
    """A paper image's display name: ``image_Baboon512rgb`` → ``Baboon``, ``kodim01`` as is.

    Examples
    --------
    >>> image_label("image_F16_512rgb"), image_label("image_House256rgb"), image_label("kodim12")
    ('F16', 'House', 'kodim12')
    """
    label = stem.removeprefix("image_")
    for suffix in ("_512rgb", "512rgb", "256rgb"):
        label = label.removesuffix(suffix)
    return label


def summarise_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per image and architecture, plus the average row.

    Images are shown by :func:`image_label`, in case-insensitive alphabetical order (the
    poster's). The average row is the mean over images of the per-image means (± the std over
    seeds of the per-seed averages over images).
    """
    order = [a for a in ARCHITECTURES if a in set(rows["architecture"])]
    order += sorted(set(rows["architecture"]) - set(order))
    rows = rows.assign(image=rows["image"].map(image_label))
    grouped = rows.groupby(["image", "architecture"])["psnr"]
    mean = grouped.mean().unstack()[order]
    std = grouped.std(ddof=0).unstack()[order]
    images = sorted(mean.index, key=str.lower)
    mean, std = mean.loc[images], std.loc[images]
    per_seed = rows.groupby(["seed", "architecture"])["psnr"].mean().unstack()[order]
    table = pd.DataFrame(index=[*mean.index, "Average"], columns=order, dtype=object)
    for arch in order:
        for image in mean.index:
            table.loc[image, arch] = f"{mean.loc[image, arch]:.2f} ± {std.loc[image, arch]:.2f}"
        table.loc["Average", arch] = (f"{mean[arch].mean():.2f} ± "
                                      f"{per_seed[arch].std(ddof=0):.2f}")
    table.index.name = "image"
    return table


def best_is(rows: pd.DataFrame, architecture: str) -> bool:
    """Whether ``architecture`` has the highest mean PSNR over all images and seeds."""
    means = rows.groupby("architecture")["psnr"].mean()
    return bool(means.idxmax() == architecture)


def beats(rows: pd.DataFrame, architecture: str, others: Sequence[str],
          per_image: bool = True) -> bool:
    """Whether ``architecture``'s mean PSNR beats each of ``others`` (on every image, or on
    the mean over images)."""
    keys = ["image", "architecture"] if per_image else ["architecture"]
    means = rows.groupby(keys)["psnr"].mean()
    if not per_image:
        return bool(all(means[architecture] > means[o] for o in others))
    table = means.unstack()
    return bool(all((table[architecture] > table[o]).all() for o in others))


def gain_over_noisy(rows: pd.DataFrame, architecture: str) -> float:
    """Mean gain in dB of ``architecture``'s best PSNR over the noisy input's PSNR."""
    part = rows[rows["architecture"] == architecture]
    return float((part["psnr"] - part["noisy_psnr"]).mean())
