"""The figures of the studies (notebooks 12–14): λ robustness, the resolution ladder, the stop
rules and the core figures at the paper's width.

They read tables (one row per fit, or per fit and rule) or recorded trajectories, not fits, so
they draw the committed results as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plots import PSNR_COLOUR, RUN_COLOURS, STOP_COLOUR, _panels, figure_bands, figure_stop

__all__ = ["figure_ladder", "figure_lambda_robustness", "figure_stopping", "figure_wide"]

#: The ladder's λ in the paper's order, each in its own colour (plain DIP grey).
_LADDER_STYLE = {"1": ("λ = 1", RUN_COLOURS[0]), "2": ("λ = 2", RUN_COLOURS[1]),
                 "3": ("λ = 3", RUN_COLOURS[2]), "plain": ("plain DIP", "#7f7f7f")}


def _lambda_order(labels) -> list[str]:
    """``plain`` first, then the λ values in increasing order."""
    values = sorted({str(v) for v in labels} - {"plain"}, key=float)
    return (["plain"] if "plain" in set(map(str, labels)) else []) + values


def _strip(ax, groups: list[np.ndarray], positions, colour, offset: float, label: str) -> None:
    """Every fit as a small dot, the mean as a bar, side by side at ``positions + offset``."""
    rng = np.random.default_rng(0)  # the jitter only spreads the dots; fixed for the same image
    labelled = False
    for x, values in zip(positions, groups):
        if not len(values):
            continue
        ax.scatter(x + offset + rng.uniform(-0.07, 0.07, len(values)), values, s=9,
                   color=colour, alpha=0.45, linewidths=0)
        ax.plot([x + offset - 0.12, x + offset + 0.12], [np.mean(values)] * 2, color=colour,
                lw=2.4, label=None if labelled else label)
        labelled = True


def figure_lambda_robustness(table: pd.DataFrame, preset: str = "quick"):
    """Per λ of one preset: peak and final PSNR of every fit; their gap (the decay); the gap to
    the peak of the paper's stop (where it fired) and of the recommended stop.

    ``table`` is :func:`dipspec.experiments.robustness.read_results`'s (one row per fit).
    """
    rows = table[table["preset"] == preset].copy()
    rows["lambda"] = rows["lambda"].astype(str)
    order = _lambda_order(rows["lambda"])
    x = np.arange(len(order))
    by = [rows[rows["lambda"] == lam] for lam in order]
    fig, axes = _panels(3, width=3.6, height=3.0)

    ax = axes[0]
    _strip(ax, [g["peak_psnr"].to_numpy() for g in by], x, PSNR_COLOUR, -0.17, "peak")
    _strip(ax, [g["final_psnr"].to_numpy() for g in by], x, RUN_COLOURS[1], 0.17, "final")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"PSNR per fit ({preset})")

    ax = axes[1]
    _strip(ax, [g["decay_db"].to_numpy() for g in by], x, RUN_COLOURS[0], 0.0, "peak − final")
    ax.set_ylabel("dB")
    ax.set_title("decay after the peak")

    ax = axes[2]
    paper = [(g["peak_psnr"] - g["stop_psnr"]).dropna().to_numpy() for g in by]
    auto = [(g["peak_psnr"] - g["auto_stop_psnr"]).to_numpy() for g in by]
    _strip(ax, paper, x, RUN_COLOURS[3], -0.17, "paper's rule (where it fired)")
    _strip(ax, auto, x, STOP_COLOUR, 0.17, "recommended (auto_stop)")
    for pos, values, group in zip(x, paper, by):
        ax.annotate(f"{len(values)}/{len(group)}", (pos - 0.17, 0), ha="center", va="top",
                    fontsize=8, color=RUN_COLOURS[3], xytext=(0, -2),
                    textcoords="offset points")
    ax.set_ylabel("peak − PSNR at the stop (dB)")
    ax.set_title("stopping: gap to the peak")

    for ax in axes:
        ax.set_xticks(x, [f"λ = {lam}" if lam != "plain" else "plain DIP" for lam in order])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left", frameon=False)
    axes[2].legend(fontsize=8, loc="upper right", frameon=False)
    return fig


def figure_stopping(rows: pd.DataFrame, rules=None):
    """Per rule: the gap to the oracle's peak of every fit (by task; a preset other than quick
    as its own group, e.g. "denoise · wide"), the fire rate and the budget saved on the runs that
    peaked in the first half.

    ``rows`` is :func:`dipspec.experiments.stopping_eval.evaluate`'s (one row per fit and rule).
    """
    rules = list(rules or [r for r in dict.fromkeys(rows["rule"]) if r != "oracle"])
    # a scale other than quick is its own group, so that 4 wide fits are not hidden in 108 quick
    if "preset" in rows:
        rows = rows.assign(task=rows["task"].where(rows["preset"] == "quick",
                                                   rows["task"] + " · " + rows["preset"]))
    tasks = list(dict.fromkeys(rows["task"]))
    colours = dict(zip(tasks, (PSNR_COLOUR, *RUN_COLOURS)))
    fig, axes = _panels(3, width=3.8, height=3.0)
    x = np.arange(len(rules))
    width = 0.8 / len(tasks)

    ax = axes[0]
    for i, task in enumerate(tasks):
        groups = [rows[(rows["rule"] == r) & (rows["task"] == task)]["gap_to_peak_db"].to_numpy()
                  for r in rules]
        _strip(ax, groups, x, colours[task], (i - (len(tasks) - 1) / 2) * width, task)
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_ylabel("oracle peak − PSNR returned (dB)")
    ax.set_title("gap to the peak, every fit")
    ax.legend(fontsize=8, frameon=False, loc="upper left")

    for ax, column, title in ((axes[1], "fired", "fire rate (all fits)"),
                              (axes[2], "saved", "budget saved (runs that peaked early)")):
        for i, task in enumerate(tasks):
            subset = rows[rows["task"] == task]
            if column == "saved":
                subset = subset[subset["peaked"]]
            values = [subset[subset["rule"] == r][column].mean() for r in rules]
            ax.bar(x + (i - (len(tasks) - 1) / 2) * width, values, width, color=colours[task],
                   label=task)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks(x, rules, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    return fig


def figure_ladder(table: pd.DataFrame):
    """The resolution ladder: per image, the final PSNR (solid) and the peak (dashed) of λ = 1,
    2, 3 and plain DIP against the image side, at the paper's width.

    ``table`` is :func:`dipspec.experiments.ladder.read_ladder`'s (one row per fit); a rung not
    yet run is simply absent.
    """
    from ..experiments.ladder import LADDER_IMAGES

    rows = table.assign(**{"lambda": table["lambda"].astype(str)})
    images = sorted(set(rows["image"]), key=lambda name: (
        LADDER_IMAGES.index(name) if name in LADDER_IMAGES else len(LADDER_IMAGES), name))
    fig, axes = _panels(len(images), width=3.4, height=3.0)
    axes = np.atleast_1d(axes)
    sizes = sorted(set(rows["size"]))
    for ax, image in zip(axes, images):
        for lam, (name, colour) in _LADDER_STYLE.items():
            fits = rows[(rows["image"] == image) & (rows["lambda"] == lam)].sort_values("size")
            if fits.empty:
                continue
            ax.plot(fits["size"], fits["final_psnr"], "o-", color=colour, label=f"{name}, final")
            ax.plot(fits["size"], fits["peak_psnr"], "^--", color=colour, alpha=0.6, ms=4,
                    label=f"{name}, peak")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [f"{s}²" for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("image side (px)")
        ax.set_title(image)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[len(axes) // 2].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4,
                                fontsize=8, frameon=False)
    return fig


def figure_wide(name: str, runs, smooth: int):
    """One of the core figures (``fbc_noise``, ``lipschitz_control``, ``gaussian_control``,
    ``automatic_stop``) drawn exactly as its quick notebook draws it, from fits or recorded
    trajectories (:func:`dipspec.experiments.wide.recorded_figures`)."""
    if name == "automatic_stop":
        return figure_stop(runs)
    if name == "gaussian_control":
        return figure_bands(runs, smooth=smooth, title="FBC ({label})")
    if name in ("fbc_noise", "lipschitz_control"):
        return figure_bands(runs, smooth=smooth, mark_peak=name == "fbc_noise")
    raise ValueError(f"unknown figure {name!r}; choose fbc_noise, lipschitz_control, "
                     "gaussian_control or automatic_stop")
