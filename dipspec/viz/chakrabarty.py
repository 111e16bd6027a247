"""Figures of the Chakrabarty & Maji experiments (notebooks 07–11), in the style of
:mod:`dipspec.viz.plots` (matplotlib imported lazily, when a figure is drawn).

The numbers behind each figure come from :mod:`dipspec.experiments.chakrabarty`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from ..experiments.chakrabarty import ARCHITECTURES, image_label, meetings, spectral_slope
from ..fitting import FitResult
from .plots import STOP_COLOUR, _plt, plot_fbc, show_images

__all__ = [
    "figure_init_spectra",
    "figure_noise_fits",
    "figure_stride",
    "figure_table",
    "figure_trajectories",
]


def figure_trajectories(distance: pd.Series, sweep: pd.DataFrame, images: Mapping[str, Tensor],
                        sweep_images: Mapping[str, Tensor], rise: float = 1.3, smooth: int = 5):
    """Trajectory distance (meetings marked), the outputs at the meetings, and the sweep."""
    plt = _plt()
    columns = max(len(images), len(sweep_images), 4)
    fig = plt.figure(figsize=(1.7 * columns, 7.6))
    grid = fig.add_gridspec(3, columns, height_ratios=[2.2, 1, 1])
    left = fig.add_subplot(grid[0, : columns // 2])
    left.semilogy(distance.index, distance.values, color="#1f4e9c", linewidth=1.2)
    for k, it in enumerate(meetings(distance, rise, smooth)):
        left.axvline(it, color=STOP_COLOUR, linestyle="--", linewidth=1.2,
                     label="meetings" if k == 0 else None)
    left.set(xlabel="iteration", ylabel="mean squared distance", title="two fits, one image")
    left.legend()
    right = fig.add_subplot(grid[0, columns // 2:])
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, sweep.shape[1]))
    for colour, column in zip(colours, sweep.columns):
        right.semilogy(sweep.index, sweep[column], color=colour, linewidth=1.2,
                       label=f"lines {column:.0%} of the side")
    right.set(xlabel="iteration", ylabel="mean squared distance", title="synthetic sweep")
    right.legend(fontsize=7)
    for row, shown in ((1, images), (2, sweep_images)):
        axes = [fig.add_subplot(grid[row, i]) for i in range(len(shown))]
        show_images(shown, axes=axes)
        for ax in axes:
            ax.title.set_fontsize(6)
    fig.tight_layout()
    return fig


def figure_noise_fits(fits: Mapping[str, FitResult], curves: Mapping[str, pd.DataFrame],
                      show: Sequence[int], clean: Tensor):
    """Per noise: observation and outputs at ``show`` iterations, fitted fractions, FBC."""
    plt = _plt()
    rows = len(fits)
    fig, axes = plt.subplots(rows, len(show) + 4, figsize=(2.1 * (len(show) + 4), 2.3 * rows),
                             squeeze=False)
    for r, (label, result) in enumerate(fits.items()):
        images = {"clean": clean, f"{label} noise": result.task.observation}
        images.update({f"iteration {it}": result.snapshots[it] for it in show})
        show_images(images, axes=axes[r, : len(images)])
        ax = axes[r, len(images)]
        curve = curves[label]
        ax.plot(curve.index, curve["noise"], label="noise", color="#c0392b")
        ax.plot(curve.index, curve["texture"], label="fine texture", color="#1f4e9c")
        ax.set(xlabel="iteration", ylabel="fraction fitted", ylim=(-0.1, 1.1))
        ax.legend(fontsize=7)
        plot_fbc(result, ax=axes[r, len(images) + 1], title=f"FBC, {label} noise")
    fig.tight_layout()
    return fig


def figure_init_spectra(spectra: Mapping[str, pd.DataFrame],
                        examples: Mapping[str, Tensor] | None = None):
    """Log-log mean power spectra at initialisation (one panel per entry, a line per column)."""
    plt = _plt()
    extra = len(examples or {})
    fig, axes = plt.subplots(1, len(spectra) + extra, figsize=(3.6 * len(spectra) + 2 * extra,
                                                                3.2), squeeze=False)
    for ax, (title, frame) in zip(axes[0], spectra.items()):
        colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, frame.shape[1]))
        for colour, column in zip(colours, frame.columns):
            depth, std = column
            slope = spectral_slope(frame[column])
            ax.loglog(frame.index, frame[column], color=colour, linewidth=1.2,
                      label=f"depth {depth}, σ_in {std:g} (slope {slope:.2f})")
        ax.set(xlabel="frequency (cycles per signal)", ylabel="normalised power", title=title)
        ax.legend(fontsize=6)
    if examples:
        show_images(examples, axes=axes[0, len(spectra):])
    fig.tight_layout()
    return fig


def figure_stride(fits: Mapping[int, FitResult], errors: Mapping[int, pd.DataFrame],
                  iteration: int, clean: Tensor):
    """Outputs at ``iteration`` and the power-spectrum error over iterations per stride."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2 + len(errors) + 1, figsize=(3.0 * (3 + len(errors)), 3.0))
    images = {"target": clean}
    images.update({f"stride {s}, iteration {iteration}": f.snapshots[iteration]
                   for s, f in fits.items()})
    show_images(images, axes=axes[: len(images)])
    vmax = max(float(e.to_numpy().max()) for e in errors.values())
    for ax, (stride, error) in zip(axes[len(images):], errors.items()):
        shown = ax.imshow(error.to_numpy().T, origin="lower", aspect="auto", cmap="magma",
                          vmin=0, vmax=vmax,
                          extent=(error.index[0], error.index[-1], 0, error.shape[1] - 1))
        ax.set(xlabel="iteration", ylabel="frequency (cycles per image)",
               title=f"|log10 power error|, stride {stride}")
        ax.grid(False)
    fig.colorbar(shown, ax=axes[-1])
    fig.tight_layout()
    return fig


def figure_table(rows: pd.DataFrame):
    """Bar chart of the oracle PSNR per image and architecture (mean over seeds, ± std)."""
    plt = _plt()
    order = [a for a in ARCHITECTURES if a in set(rows["architecture"])]
    rows = rows.assign(image=rows["image"].map(image_label))
    mean = rows.groupby(["image", "architecture"])["psnr"].mean().unstack()[order]
    std = rows.groupby(["image", "architecture"])["psnr"].std(ddof=0).unstack()[order]
    images = sorted(mean.index, key=str.lower)
    mean, std = mean.loc[images], std.loc[images]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(mean)), 3.4))
    mean.plot.bar(yerr=std, ax=ax, width=0.8, capsize=2, rot=0)
    ax.axhline(float(rows["noisy_psnr"].mean()), color="grey", linestyle=":",
               label="noisy input")
    its = rows.groupby("architecture")["iterations"].max()
    ax.set(ylabel="best PSNR (dB)", xlabel="",
           ylim=(max(0.0, float(mean.min().min()) - 3), float(mean.max().max()) + 1),
           title="iterations: " + ", ".join(f"{a} {its[a]}" for a in order))
    ax.legend(fontsize=7, ncol=len(order) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig
