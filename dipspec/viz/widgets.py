"""The notebooks' explorers (ipywidgets 8, JupyterLab 4, Voilà): λ, upsampling and σ, the stop
rule's window and threshold, and the iteration scrubber, each an
:class:`~dipspec.viz.explorer.Explorer` (fits in a worker thread, debounced, cancellable; the
projector style). Building an explorer never fits: it draws the results it is given — a
precomputed grid makes every control scrub instantly, and slider ranges follow the grid — so a
notebook run headless (nbval, papermill) passes the widget cells in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .. import experiments
from ..experiments.grid import Grid, GridKey, describe
from ..fitting import FitResult
from ..measure import log_spectrum
from ..nn import UPSAMPLE_MODES
from ..tasks import Task
from . import plots
from .explorer import DEBOUNCE_S, Explorer, sortable

__all__ = ["Explorer", "grid_explorer", "iteration_explorer", "lambda_explorer",
           "stopping_explorer", "upsampling_explorer"]

#: Colours of the other settings fitted (one each, named in the legend); the current is black.
_OTHER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f", "#d62728")


def _slider(description: str, value: float, low: float, high: float, step: float):
    import ipywidgets as w

    return w.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         continuous_update=False, readout_format=".2f",
                         style={"description_width": "initial"}, layout=w.Layout(width="480px"))


def _grid_range(values: Sequence[float], default: tuple[float, float, float]
                ) -> tuple[float, float, float]:
    """Slider (low, high, step) over the values of a grid: its span, and its finest spacing
    (at least 0.05); the default range without a grid of two or more values."""
    values = sorted(set(round(float(v), 2) for v in values))
    if len(values) < 2:
        return default
    gaps = [b - a for a, b in zip(values, values[1:])]
    return values[0], values[-1], max(round(min(gaps), 2), 0.05)


def _fit_setting(task: Task, setup: experiments.Setup, iterations: int, make_model,
                 input_kind: str = "fourier"):
    """``make_fit`` for an explorer: the model for a key, fitted with the explorer's
    callback."""
    def make_fit(key, callback) -> FitResult:
        return experiments.fit_model(task, make_model(key), setup, iterations=iterations,
                                     input_kind=input_kind, callbacks=[callback],
                                     progress=False)
    return make_fit


def _gap_words(peak_db: float, final_db: float) -> str:
    gap = round(peak_db - final_db, 2)
    return "at the peak" if gap <= 0 else f"{gap:.2f} dB below the peak"


def _sweep_figure(explorer: Explorer, current, label_of: Callable[[object], str], smooth: int,
                  shown: Mapping | None = None, with_output: bool = False):
    """PSNR of the cached fits (``shown``, default all; each named, the current one in black)
    beside the current FBC bands, after the current output with ``with_output``; legends
    below the panels, never over the curves."""
    result = explorer.results.get(current)
    if result is None:
        return None, "move a control to fit"
    label = label_of(current)
    fig, axes = plots._panels(3 if with_output else 2, width=4.6, height=3.4)
    if with_output:
        axes[0].imshow(plots.to_numpy_image(result.output), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("output at the last iteration")
        axes[0].set_axis_off()
    left, right = axes[-2:]
    shown = explorer.results if shown is None else shown
    others = {label_of(key): r for key, r in sorted(shown.items(), key=lambda kv: sortable(kv[0]))
              if key != current}
    if others:
        colours = [_OTHER_COLOURS[i % len(_OTHER_COLOURS)] for i in range(len(others))]
        plots.plot_psnr(others, ax=left, colours=colours)
    plots.plot_psnr({f"{label} (shown)": result}, ax=left, colours=["#000000"])
    left.set_title("PSNR of every setting fitted" if shown is explorer.results
                   else "PSNR beside its neighbours")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    peak_it, peak_db = experiments.peak(result, smooth)
    plots.plot_fbc(result, ax=right, mark=peak_it, title=f"FBC ({label})")
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    final = experiments.summary({label: result}, smooth).iloc[0]["final PSNR"]
    text = (f"<b>{label}</b>: peak {peak_db:.2f} dB at iteration {peak_it}, "
            f"final {final:.2f} dB ({_gap_words(peak_db, final)})")
    return fig, text


def _lambda_key(result: FitResult) -> float:
    value = getattr(result.model, "lipschitz_lambda", None)
    return round(float(value or 0.0), 2)


def lambda_explorer(task: Task, setup: experiments.Setup,
                    results: Mapping[str, FitResult] | None = None,
                    iterations: int | None = None, value: float | None = None, *,
                    background: bool = True, debounce: float = DEBOUNCE_S) -> Explorer:
    """A λ slider (0 = plain DIP) that refits the decoder and redraws PSNR and FBC (SPEC §3).

    Parameters
    ----------
    task : Task
    setup : experiments.Setup
        Width, seed and device of the refits.
    results : mapping of FitResult, optional
        Fits already made — a grid from :func:`dipspec.experiments.sweep_lambda` (one
        :func:`dipspec.fit_many` call): shown at once, and the slider's range and step follow
        their λ values (default 0–2 in steps of 0.1).
    iterations : int, optional
        Iterations of each refit (default: the setup's).
    value : float, optional
        Initial λ (default: the right λ of the setup's triple).
    background, debounce
        As in :class:`Explorer`.
    """
    iterations = iterations or setup.iterations
    cached = {_lambda_key(r): r for r in (results or {}).values()}
    start = round(float(value if value is not None else setup.lambdas[len(setup.lambdas) // 2]),
                  2)
    low, high, step = _grid_range(cached, (0.0, 2.0, 0.1))
    slider = _slider("Lipschitz bound λ per layer (0: plain DIP)", start, min(low, start),
                     max(high, start), step)

    def key() -> float:
        return round(float(slider.value), 2)

    def make_model(lam: float):
        return experiments.make_model("decoder", setup, task.channels,
                                      lipschitz_lambda=lam or None)

    def label_of(lam: float) -> str:
        return f"λ = {lam:g}" if lam else "plain DIP"

    def draw(explorer: Explorer):
        return _sweep_figure(explorer, key(), label_of, setup.smooth)

    return Explorer({"lipschitz_lambda": slider}, draw, key=key, describe=label_of,
                    make_fit=_fit_setting(task, setup, iterations, make_model), results=cached,
                    background=background, debounce=debounce)


def _upsampling_key(result: FitResult) -> tuple[str, float]:
    mode = getattr(result.model, "upsample", "bilinear")
    sigmas = getattr(result.model, "gaussian_sigma", None) or (0.0,)
    return mode, round(float(sigmas[-1]), 2) if mode == "gaussian" else 0.0


def upsampling_explorer(task: Task, setup: experiments.Setup,
                        results: Mapping[str, FitResult] | None = None,
                        iterations: int | None = None,
                        lipschitz_lambda: float | str | None = "preset", *,
                        background: bool = True, debounce: float = DEBOUNCE_S) -> Explorer:
    """Choose the upsampling mode and the Gaussian σ; refit the decoder and redraw (SPEC §4).

    Parameters
    ----------
    task, setup, results, iterations, background, debounce
        As in :func:`lambda_explorer` (``results`` from :func:`dipspec.experiments.sweep_sigma`;
        the σ slider's range and step follow their σ values, default 0–2 in steps of 0.1).
    lipschitz_lambda : float, "preset" or None
        λ of every refit, as in :func:`dipspec.experiments.sweep_sigma` (default ``"preset"``:
        the setup's ``gaussian_lambda``; ``None``: no control). Pass the sweep's value so
        that its fits are reused.
    """
    import ipywidgets as w

    lipschitz_lambda = experiments.sigma_sweep_lambda(setup, lipschitz_lambda)

    iterations = iterations or setup.iterations
    cached = {_upsampling_key(r): r for r in (results or {}).values()}
    start = float(setup.sigmas[len(setup.sigmas) // 2])
    low, high, step = _grid_range([s for m, s in cached if m == "gaussian"], (0.0, 2.0, 0.1))
    sigma = _slider("Gaussian kernel σ (px)", start, min(low, start), max(high, start), step)
    mode = w.Dropdown(options=list(UPSAMPLE_MODES), value="gaussian",
                      description="upsampling layer", style={"description_width": "initial"})

    def key() -> tuple[str, float]:
        sigma.disabled = mode.value != "gaussian"
        return mode.value, round(float(sigma.value), 2) if mode.value == "gaussian" else 0.0

    def make_model(chosen: tuple[str, float]):
        return experiments.make_model(
            "decoder", setup, task.channels, lipschitz_lambda=lipschitz_lambda,
            upsample=chosen[0], gaussian_sigma=chosen[1] if chosen[0] == "gaussian" else None)

    def label_of(chosen: tuple[str, float]) -> str:
        return f"{chosen[0]}, σ = {chosen[1]:g}" if chosen[0] == "gaussian" else chosen[0]

    def draw(explorer: Explorer):
        return _sweep_figure(explorer, key(), label_of, setup.smooth)

    return Explorer({"upsample_mode": mode, "gaussian_sigma": sigma}, draw, key=key,
                    describe=label_of, results=cached,
                    make_fit=_fit_setting(task, setup, iterations, make_model),
                    background=background, debounce=debounce)


def grid_explorer(grid: Grid, image: str | None = None, iterations: int | None = None, *,
                  background: bool = True, debounce: float = DEBOUNCE_S) -> Explorer:
    """Scrub a precomputed grid (:func:`dipspec.experiments.precompute_grid` or
    :func:`~dipspec.experiments.load_grid`): image, λ, upsampling and σ.

    A point of the grid redraws at once; any other is fitted in the background as the grid's
    were (:meth:`Grid.fit`) and joins it. The sliders' ranges and steps follow the grid. The
    plot shows the output, the PSNR of the current point beside its neighbours (the same image
    with the other λ, and with the other upsampling and σ) and its FBC bands.

    Parameters
    ----------
    grid : Grid
    image : str, optional
        The image shown first (default: the grid's first).
    iterations : int, optional
        Iterations of each refit off the grid (default: the grid's).
    background, debounce
        As in :class:`Explorer`.
    """
    import ipywidgets as w

    images = grid.values("image")
    if not images:
        raise ValueError("the grid is empty; precompute it with at least one image")
    wide = {"description_width": "initial"}
    picture = w.Dropdown(options=images, value=image or images[0], description="image",
                         style=wide)
    lambdas, sigmas = grid.values("lipschitz_lambda"), grid.values("gaussian_sigma")
    start = lambdas[len(lambdas) // 2]
    low, high, step = _grid_range(lambdas, (0.0, 2.0, 0.1))
    lam = _slider("Lipschitz bound λ per layer (0: plain DIP)", start, low, high, step)
    modes = grid.values("upsample")
    mode = w.Dropdown(options=list(dict.fromkeys([*modes, *UPSAMPLE_MODES])), value=modes[0],
                      description="upsampling layer", style=wide)
    low, high, step = _grid_range(sigmas, (0.0, 2.0, 0.1))
    sigma = _slider("Gaussian kernel σ (px)", sigmas[len(sigmas) // 2] if sigmas else 0.5,
                    low, high, step)
    several = len(images) > 1

    def key() -> GridKey:
        sigma.disabled = mode.value != "gaussian"
        return GridKey.of(picture.value, lam.value, mode.value, sigma.value)

    def label_of(point: GridKey) -> str:
        return describe(point, image=several)

    def draw(explorer: Explorer):
        current = key()
        neighbours = {k: r for k, r in explorer.results.items() if k.image == current.image
                      and ((k.upsample, k.gaussian_sigma) == (current.upsample,
                                                               current.gaussian_sigma)
                           or k.lipschitz_lambda == current.lipschitz_lambda)}
        return _sweep_figure(explorer, current, label_of, grid.setup.smooth, shown=neighbours,
                             with_output=True)

    def make_fit(point: GridKey, callback) -> FitResult:
        result = grid.fit(point, callbacks=[callback], iterations=iterations)
        grid.results[point] = result
        return result

    return Explorer({"image": picture, "lipschitz_lambda": lam, "upsample_mode": mode,
                     "gaussian_sigma": sigma}, draw, key=key, describe=label_of,
                    make_fit=make_fit, results=grid.results, background=background,
                    debounce=debounce)


def stopping_explorer(results: Mapping[str, FitResult], smooth: int,
                      windows: Sequence[int] = (10, 500), window: int = 100,
                      eps: float = 0.01, *, debounce: float = DEBOUNCE_S) -> Explorer:
    """Sliders for the stopping rule's window n and threshold ε (SPEC §6) over finished fits.

    The rule is re-applied to each fit's logged ratios (no refit): the plot marks the new stop
    and the status line shows the table of :func:`dipspec.experiments.stop_table`.
    """
    import ipywidgets as w

    wide = {"description_width": "initial"}
    window_slider = w.IntSlider(value=window, min=windows[0], max=windows[1], step=10,
                                description="window n (iterations)", continuous_update=False,
                                style=wide)
    eps_slider = w.FloatLogSlider(value=eps, base=10, min=-4, max=-1, step=0.25,
                                  description="threshold ε", continuous_update=False,
                                  readout_format=".4f", style=wide)

    def draw(explorer: Explorer):
        n, threshold = int(window_slider.value), float(eps_slider.value)
        stops = {label: experiments.stop_at(r, n, threshold) for label, r in results.items()}
        fig = plots.figure_stop(results, stops=stops)
        table = experiments.stop_table(results, smooth, n, threshold)
        return fig, f"<p>window n = {n}, ε = {threshold:.4g}</p>" + table.to_html()

    return Explorer({"stop_window": window_slider, "stop_eps": eps_slider}, draw,
                    results=dict(results), debounce=debounce)


def iteration_explorer(result: FitResult, label: str = "", *,
                       debounce: float = 0.05) -> Explorer:
    """Scrub through the iterations of one fit: the spectral bias, seen arriving.

    At the chosen iteration: the output, the log-magnitude spectrum of the output and of its
    error against the clean image (:func:`dipspec.measure.log_spectrum`, zero frequency in the
    centre), and the five FBC bands over the run with a marker at that iteration — the lowest
    frequencies arrive first, the noise (the spectrum's corners) last. The outputs are those
    the fit kept: run it with ``keep_outputs=dipspec.fitting.log_spaced_iterations(N)``.

    Raises
    ------
    ValueError
        If the fit kept no outputs, or has no clean image to measure the error against.
    """
    import ipywidgets as w

    if not result.snapshots:
        raise ValueError("the fit kept no outputs; fit with keep_outputs="
                         "dipspec.fitting.log_spaced_iterations(iterations)")
    clean = result.task.clean
    if clean is None:
        raise ValueError("the iteration explorer needs the clean image (a synthetic task) to "
                         "show the error's spectrum")
    kept = sorted(result.snapshots)
    slider = w.SelectionSlider(options=kept, value=kept[len(kept) // 2],
                               description="iteration", continuous_update=True,
                               style={"description_width": "initial"},
                               layout=w.Layout(width="600px"))
    clean = clean.detach().cpu()
    reference = log_spectrum(clean)[0]
    history = result.history.set_index("iteration")

    def draw(explorer: Explorer):
        it = int(slider.value)
        output = result.snapshots[it].detach().cpu().to(clean.dtype)
        spectrum = log_spectrum(output)[0]
        error = log_spectrum(output - clean)[0]
        fig, axes = plots._panels(4, width=3.3, height=3.3)
        axes[0].imshow(plots.to_numpy_image(output), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"output, iteration {it}")
        top = float(reference.max())
        axes[1].imshow(spectrum.numpy(), cmap="magma", vmin=0, vmax=top)
        axes[1].set_title("its spectrum (log |F|)")
        axes[2].imshow(error.numpy(), cmap="magma", vmin=0, vmax=top)
        axes[2].set_title("spectrum of its error")
        for ax in axes[:3]:
            ax.set_axis_off()
        plots.plot_fbc(result, ax=axes[3], mark=it, title="FBC bands (1: lowest)")
        axes[3].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        row = history.loc[it] if it in history.index else None
        words = [f"<b>{label + ': ' if label else ''}iteration {it}</b>"]
        if row is not None and "psnr" in row and row["psnr"] == row["psnr"]:
            words.append(f"PSNR {row['psnr']:.2f} dB")
        if row is not None and "fbc_1" in row and row["fbc_1"] == row["fbc_1"]:
            bands = ", ".join(f"{row[f'fbc_{k}']:.2f}" for k in range(1, 6))
            words.append(f"FBC bands 1–5: {bands}")
        return fig, "; ".join(words)

    return Explorer({"iteration": slider}, draw, debounce=debounce)
