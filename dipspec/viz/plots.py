"""One plotting style for every notebook and the CLI (matplotlib, imported lazily).

The paper's conventions: FBC bands drawn dark → light brown (band 1 darkest), PSNR in blue,
the PSNR peak and the automatic stop as vertical green lines. Figures are saved with
:func:`save_figure`, which writes a JSON of provenance beside each image.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from ..experiments.provenance import provenance

__all__ = [
    "BAND_COLOURS",
    "STOP_COLOUR",
    "RUN_COLOURS",
    "figure_applications",
    "figure_bands",
    "figure_dir",
    "figure_quickstart",
    "figure_restorations",
    "figure_stop",
    "plot_fbc",
    "plot_psnr",
    "plot_ratio",
    "provenance",
    "save_figure",
    "show_images",
    "to_numpy_image",
]

BAND_COLOURS = ("#3b1f0b", "#6b3a17", "#9c5b2a", "#c98e5a", "#ebc59b")
STOP_COLOUR = "#2ca02c"
PSNR_COLOUR = "#1f4e9c"
RATIO_COLOUR = "#4b4bd6"
#: Colours of several runs in one PSNR panel (the paper's brown → red → salmon, then grey for a
#: reference such as plain DIP, then blue).
RUN_COLOURS = ("#8c4a17", "#d9472b", "#f0a07a", "#6b6b6b", "#1f4e9c")
#: Methods of ``applications.png``: ours red, plain DIP dark brown, then other baselines.
METHOD_COLOURS = ("#d9472b", "#3b1f0b", "#9c5b2a", "#f0a07a")


#: The house style every figure function applies (:func:`projector` enlarges the text).
_STYLE = {"figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
          "axes.grid": True, "grid.alpha": 0.3, "font.size": 9, "legend.frameon": False}
#: Text sizes for a projector: 12 pt and up at the figure's size (the explorers' plots).
PROJECTOR_STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
                   "xtick.labelsize": 12, "ytick.labelsize": 12, "legend.fontsize": 12}
# The style in force where a figure is drawn: per thread (an explorer draws in its worker
# thread while the notebook's own figures keep the house style).
_style: ContextVar[dict] = ContextVar("dipspec_plot_style", default=_STYLE)


def _plt():
    # Without a display matplotlib picks Agg by itself; in Jupyter the inline backend.
    import matplotlib.pyplot as plt

    plt.rcParams.update(_style.get())
    return plt


@contextmanager
def projector():
    """Draw with :data:`PROJECTOR_STYLE` inside the block (matplotlib's settings and the house
    style are restored after it): what the notebooks' explorers use, so a class can read every
    label."""
    import matplotlib.pyplot as plt

    with plt.rc_context():
        token = _style.set({**_STYLE, **PROJECTOR_STYLE})
        try:
            yield
        finally:
            _style.reset(token)


def to_numpy_image(image) -> np.ndarray:
    """``(1, C, H, W)``/``(C, H, W)`` tensor → ``H×W`` or ``H×W×3`` array clipped to [0, 1]."""
    array = image.detach().cpu().double().numpy() if hasattr(image, "detach") else image
    array = np.asarray(array)
    if array.ndim == 4:
        array = array[0]
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return np.clip(array, 0, 1)


def _mark(ax, iteration, label=None, style="-") -> None:
    if iteration is not None:
        ax.axvline(iteration, color=STOP_COLOUR, linestyle=style, linewidth=1.5, label=label)


def plot_psnr(results: Mapping, ax=None, smooth: int = 1, mark_peak: bool = False,
              mark_stop: bool = False, colours=None):
    """PSNR over iterations for each labelled :class:`~dipspec.FitResult`."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    for i, (label, result) in enumerate(results.items()):
        curve = result.curve("psnr", smooth)
        colour = colours[i] if colours else None
        ax.plot(curve.index, curve.values, label=label, color=colour, linewidth=1.2)
        if mark_peak:
            _mark(ax, result.peak("psnr", smooth)[0], style="--")
        if mark_stop:
            _mark(ax, result.stop_iteration)
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    if len(results) > 1:
        ax.legend()
    return ax


def plot_fbc(result, ax=None, mark: int | None = None, title: str | None = None,
             bands: int = 5):
    """The FBC bands over iterations, band 1 (lowest frequencies) darkest."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    history = result.history.dropna(subset=["fbc_1"])
    for k in range(1, bands + 1):
        ax.plot(history["iteration"], history[f"fbc_{k}"], color=BAND_COLOURS[k - 1],
                label=f"band {k}", linewidth=1.2)
    _mark(ax, mark)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("iteration")
    ax.set_ylabel("FBC")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=_style.get().get("legend.fontsize", 7), ncol=1, loc="lower right")
    return ax


def plot_ratio(result, ax=None, mark_stop: bool = True):
    """The blur/sharpness ratio over iterations (SPEC §6), the stop marked."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    history = result.history.dropna(subset=["ratio"])
    ax.plot(history["iteration"], history["ratio"], color=BAND_COLOURS[1], linewidth=1.2)
    if mark_stop:
        _mark(ax, result.stop_iteration)
    ax.set_xlabel("iteration")
    ax.set_ylabel("blur / sharpness")
    return ax


def show_images(images: Mapping, axes=None, size: float = 2.4):
    """A row of images with their titles (``{"noisy (20.1 dB)": tensor, ...}``)."""
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size))
        axes = np.atleast_1d(axes)
    for ax, (title, image) in zip(axes, images.items()):
        array = to_numpy_image(image)
        # nearest: show the pixels as they are (small images, and far smaller PNGs)
        ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return axes


def figure_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where figures go: ``folder``, else ``$DIPSPEC_FIGURE_DIR``, else ``./out/figures``.

    The committed ``figures/`` are written only on purpose (``DIPSPEC_FIGURE_DIR=figures``), so
    a quick run never overwrites them.
    """
    chosen = folder or os.environ.get("DIPSPEC_FIGURE_DIR") or Path("out") / "figures"
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str, provenance: Mapping, folder=None) -> Path:
    """Save ``fig`` as ``name.png`` and its provenance as ``name.json``; return the PNG path."""
    target = figure_dir(folder)
    png = target / f"{name}.png"
    with tempfile.NamedTemporaryFile(dir=target, suffix=".png", delete=False) as tmp:
        fig.savefig(tmp.name, dpi=110, bbox_inches="tight")
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600; figures are for everyone
    os.replace(tmp.name, png)
    meta = target / f"{name}.json"
    meta.write_text(json.dumps(dict(provenance), indent=1, default=str) + "\n")
    return png


# --------------------------------------------------------------------------------------------
# the paper's figures, composed from the panels above
# --------------------------------------------------------------------------------------------


def _panels(count: int, width: float = 3.2, height: float = 2.6):
    plt = _plt()
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    fig.set_layout_engine("constrained")
    return fig, list(axes[0])


def figure_bands(results: Mapping, smooth: int = 1, mark_peak: bool = False,
                 title: str = "FBC ({label})"):
    """PSNR of every run in one panel, then the five FBC bands of each run in its own panel.

    The layout of ``fbc_noise.png``, ``lipschitz_control.png`` and ``gaussian_control.png``:
    with ``mark_peak`` a green line marks each run's PSNR peak (of the curve smoothed over
    ``smooth`` logged iterations) in its FBC panel.
    """
    fig, axes = _panels(1 + len(results))
    plot_psnr(results, ax=axes[0], colours=RUN_COLOURS[: len(results)])
    axes[0].set_title("PSNR")
    for ax, (label, result) in zip(axes[1:], results.items()):
        mark = result.peak("psnr", smooth)[0] if mark_peak else None
        plot_fbc(result, ax=ax, mark=mark, title=title.format(label=label))
        if mark_peak:
            _mark(axes[0], mark)
    for ax in axes[2:]:
        ax.get_legend().remove()
    return fig


def figure_stop(results: Mapping, stops: Mapping | None = None):
    """Per run, PSNR (left axis) and the blur/sharpness ratio (right axis), the stop in green.

    The layout of ``automatic_stop.png``. ``stops`` overrides each run's ``stop_iteration``.
    """
    fig, axes = _panels(len(results))
    for ax, (label, result) in zip(axes, results.items()):
        curve = result.curve("psnr")
        ax.plot(curve.index, curve.values, color="#d9472b", linewidth=1.0, label="PSNR")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(label)
        twin = ax.twinx()
        twin.grid(False)
        history = result.history.dropna(subset=["ratio"])
        twin.plot(history["iteration"], history["ratio"], color=RATIO_COLOUR, linewidth=1.0,
                  label="ratio")
        # The first outputs are nearly flat (sharpness ≈ 0, ratio in the thousands): scale the
        # axis to the ratio after the first 2 % of the run, as the paper's figure does.
        settled = history["ratio"][history["iteration"] >= 0.02 * history["iteration"].max()]
        if settled.notna().any():
            twin.set_ylim(0, 1.1 * float(settled.max()))
        twin.set_ylabel("blur / sharpness")
        stop = result.stop_iteration if stops is None else stops.get(label)
        _mark(ax, stop, label="auto stop")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=7)
    return fig


def _psnr_title(name: str, image, clean) -> str:
    if clean is None or image.shape != clean.shape:
        return name
    from ..measure import psnr

    return f"{name} ({float(psnr(image.cpu(), clean.cpu())[0]):.2f} dB)"


def figure_restorations(results: Mapping, degraded: Mapping | None = None, size: float = 1.7):
    """One row per task: degraded / restored / clean, each titled with its PSNR.

    ``degraded`` gives each task's observation at the clean size (for super-resolution, an
    upsampled view); by default the task's observation. Detail enhancement, which has no clean
    target, shows the input, the enhanced image and the detail layer it added (×4 for
    visibility).
    """
    plt = _plt()
    fig, axes = plt.subplots(len(results), 3, figsize=(3 * size, size * len(results)),
                             squeeze=False)
    fig.set_layout_engine("constrained")
    for row, (label, result) in zip(axes, results.items()):
        task = result.task
        clean = None if task.clean is None else task.clean.cpu()
        observed = (degraded or {}).get(label, task.observation).cpu()
        reference = None if task.name == "enhance" else clean
        if reference is None:  # detail enhancement: the layer added on top of the input
            images = {f"{label}: input": observed, "enhanced": result.output,
                      "added detail (×4)": ((result.output - observed) * 4).clamp(0, 1)}
        else:
            images = {_psnr_title(f"{label}: input", observed, reference): observed,
                      _psnr_title("restored", result.output, reference): result.output,
                      "clean": clean}
        show_images(images, axes=row)
    return fig


def figure_applications(runs: Mapping, smooth: int = 1):
    """Denoising over iterations, one panel per image: each method's PSNR, the stop of the
    first (controlled) method in green. ``runs`` maps image → {method: FitResult}."""
    fig, axes = _panels(len(runs))
    for ax, (image, methods) in zip(axes, runs.items()):
        plot_psnr(methods, ax=ax, colours=METHOD_COLOURS[: len(methods)])
        first = next(iter(methods.values()))
        _mark(ax, first.stop_iteration, label="auto stop")
        ax.set_title(image)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def figure_quickstart(result, smooth: int = 1):
    """Degraded / restored / clean (with PSNR), the PSNR curve and the FBC bands of one fit."""
    fig, axes = _panels(5, width=2.6, height=2.5)
    task = result.task
    show_images({_psnr_title("degraded", task.observation, task.clean): task.observation,
                 _psnr_title("restored", result.output, task.clean): result.output,
                 "clean": task.clean}, axes=axes[:3])
    plot_psnr({"PSNR": result}, ax=axes[3], colours=[RUN_COLOURS[1]])
    peak_iteration = result.peak("psnr", smooth)[0]
    _mark(axes[3], peak_iteration, style="--")
    axes[3].set_title("PSNR")
    plot_fbc(result, ax=axes[4], mark=peak_iteration, title="FBC")
    return fig
