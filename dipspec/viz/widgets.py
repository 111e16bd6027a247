"""Interactive explorers for the notebooks (ipywidgets 8, JupyterLab 4, Voilà).

Each explorer is a box of controls, a line saying which values are already fitted, a progress
bar, a plot and a status line. Moving a control never blocks the kernel: after a short pause
(the last of several quick moves wins) a value already fitted redraws at once, and any other
value is fitted in a worker thread while the plot keeps the old curves and the bar says
"fitting λ = 1.6 … 37 %"; a newer value cancels the fit in flight. An error is reported in the
status line and leaves the explorer as it was. Building an explorer never fits: it draws the
results it is given — a precomputed grid makes every control scrub instantly — so a notebook run
headless (nbval, papermill) passes the widget cells in well under a second.

The plot is a PNG in an ``ipywidgets.Image``, drawn in the projector style
(:func:`dipspec.viz.plots.projector`: 12-pt text and up at the displayed size, twice the
pixels for high-dpi screens). A displayed explorer also carries that PNG as ``image/png``, so a
static view of a saved notebook (nbconvert, GitHub, nbviewer) shows the last figure.
ipywidgets and matplotlib are imported only when an explorer is built.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence

from .. import experiments
from ..fitting import FitResult
from ..measure import log_spectrum
from ..nn import UPSAMPLE_MODES
from ..tasks import Task
from . import plots

__all__ = ["Explorer", "iteration_explorer", "lambda_explorer", "stopping_explorer",
           "upsampling_explorer"]

#: CSS pixels per inch: the plot is shown at its size in inches, so 12 pt reads as 12 pt.
_CSS_DPI = 96
#: Pixels per CSS pixel of the PNG (sharp on high-dpi screens and projectors).
_PIXEL_RATIO = 2
#: Seconds a control must rest before its value is fitted (arrow-key presses coalesce).
DEBOUNCE_S = 0.3
#: Colours of the other settings fitted (one each, named in the legend); the current is black.
_OTHER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f", "#d62728")


class Explorer:
    """A widget box with the state behind it (displayed as the box in a notebook).

    Parameters
    ----------
    controls : dict
        The controls by name; moving any of them updates the explorer.
    draw : callable
        ``draw(explorer) -> (figure or None, status HTML or None)`` for the current values.
    key : callable, optional
        The current values as a cache key; with ``make_fit``, a key not in :attr:`results` is
        fitted.
    make_fit : callable, optional
        ``make_fit(key, callback) -> FitResult``: one fit, passing ``callback`` to
        :func:`dipspec.fit` (it reports progress and asks the fit to stop when cancelled).
    describe : callable, optional
        A key as words (``"λ = 1.6"``), for the progress bar, the legend and the fitted line.
    results : dict, optional
        Fits already made, by key: shown at once and never refitted.
    background : bool
        Fit in a worker thread (default). ``False`` fits in the caller, as scripts may want.
    debounce : float
        Seconds a control must rest before the explorer updates (0: at once).

    Attributes
    ----------
    results : dict
        Fits made or given so far, keyed by their control values.
    renders, fits, cancelled : int
        How many times the plot was drawn; fits completed; fits cancelled by a newer value.
    error : str or None
        The last fit's failure, if it failed.
    """

    def __init__(self, controls: dict, draw: Callable[[Explorer], tuple], *,
                 key: Callable[[], Hashable] | None = None,
                 make_fit: Callable[[Hashable, Callable], FitResult] | None = None,
                 describe: Callable[[Hashable], str] = str, results: dict | None = None,
                 hint: str = "", background: bool = True, debounce: float = DEBOUNCE_S) -> None:
        import ipywidgets as w

        self.controls = controls
        self.results = dict(results or {})
        self.renders = self.fits = self.cancelled = 0
        self.error: str | None = None
        self.png = b""
        self._draw, self._key, self._make_fit, self._describe = draw, key, make_fit, describe
        self.background, self.debounce = background, debounce
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._worker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self.progress = w.IntProgress(value=0, min=0, max=1, description="",
                                      style={"description_width": "initial"},
                                      layout=w.Layout(width="70%"))
        self.progress.layout.visibility = "hidden"
        self.fitted = w.HTML(value="")
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.status = w.HTML(value=hint)
        self.widget = w.VBox([w.HBox(list(controls.values())), self.fitted, self.progress,
                              self.image, self.status])
        for control in controls.values():
            control.observe(self._changed, names="value")
        self.redraw()

    # -- controls -> updates ---------------------------------------------------------------

    def _changed(self, change) -> None:
        if not self.debounce:
            self.update()
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce, self.update)
            self._timer.daemon = True
            self._timer.start()

    def update(self) -> None:
        """Show the current values: redraw if fitted, else start their fit (cancelling any
        other fit in flight)."""
        with self._lock:
            self._timer = None
            key = self._key() if self._key is not None else None
            if self._cancel is not None:
                self._cancel.set()  # a newer value: the fit in flight is not wanted
                self._cancel = None
            if self._make_fit is None or key is None or key in self.results:
                self._hide_progress()
                self.redraw()
                return
            cancel = self._cancel = threading.Event()
            label = self._describe(key)
            self.progress.description = f"fitting {label} … 0 %"
            self.progress.value, self.progress.layout.visibility = 0, "visible"
            self.status.value = (f"fitting <b>{label}</b> in the background; the plot shows the "
                                 "last fitted setting until it is done")
        if self.background:
            self._worker = threading.Thread(target=self._fit, args=(key, label, cancel),
                                            daemon=True, name=f"dipspec fit {label}")
            self._worker.start()
        else:
            self._fit(key, label, cancel)

    def _fit(self, key: Hashable, label: str, cancel: threading.Event) -> None:
        bar = self.progress

        def callback(info: dict) -> bool:
            total = info.get("iterations") or bar.max
            done = info["iteration"] + 1
            if cancel.is_set():
                return True  # stop this fit: its value is no longer wanted
            percent = int(100 * done / max(total, 1))
            if percent != int(100 * bar.value / max(bar.max, 1)) and self._cancel is cancel:
                bar.max, bar.value = total, done
                bar.description = f"fitting {label} … {percent} %"
            return False

        try:
            result = self._make_fit(key, callback)
        except Exception as err:  # noqa: BLE001 - reported in the status line, state kept
            with self._lock:
                if self._cancel is cancel:
                    self._cancel = None
                    self.error = f"{type(err).__name__}: {err}"
                    self._hide_progress()
                    self.status.value = (f"<b>the fit for {label} failed</b> ({self.error}); "
                                         "the plot still shows the last fitted setting")
            return
        with self._lock:
            if cancel.is_set():
                self.cancelled += 1
                return
            self.results[key] = result
            self.fits += 1
            self.error = None
            if self._cancel is cancel:
                self._cancel = None
                self._hide_progress()
                self.redraw()

    def _hide_progress(self) -> None:
        self.progress.layout.visibility = "hidden"

    def cancel(self) -> None:
        """Cancel a pending update and the fit in flight; the plot stays as it is."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._cancel is not None:
                self._cancel.set()
                self._cancel = None
            self._hide_progress()
            self.status.value = "cancelled; " + self.status.value

    def wait(self, timeout: float | None = None) -> None:
        """Block until pending updates and fits are done (scripts, tests, headless runs)."""
        while True:
            with self._lock:
                timer, worker = self._timer, self._worker
            if timer is not None:
                timer.join(timeout)
                continue
            if worker is not None and worker.is_alive():
                worker.join(timeout)
                if worker.is_alive():
                    raise TimeoutError(f"the explorer's fit is still running after {timeout} s")
            with self._lock:
                if self._timer is None and (self._worker is None
                                            or not self._worker.is_alive()):
                    return

    # -- drawing -------------------------------------------------------------------------

    def redraw(self) -> None:
        import matplotlib.pyplot as plt

        with self._lock, plots.projector():
            fig, text = self._draw(self)
            if fig is not None:
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=_CSS_DPI * _PIXEL_RATIO,
                            bbox_inches="tight")
                plt.close(fig)
                self.png = buffer.getvalue()
                self.image.value = self.png
                pixels = int.from_bytes(self.png[16:20], "big")  # the PNG header's width
                self.image.layout.width = f"{pixels // _PIXEL_RATIO}px"
                self.renders += 1
            if text is not None:
                self.status.value = text
            if self._key is not None and self.results:
                current = self._key()
                names = [f"<b>{self._describe(k)}</b>" if k == current else self._describe(k)
                         for k in sorted(self.results, key=_sortable)]
                self.fitted.value = ("already fitted (instant): " + " · ".join(names)
                                     + "; other values are fitted when chosen")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if self.png:  # what a static view of the saved notebook shows
            data["image/png"] = self.png
        return bundle


def _sortable(key) -> tuple:
    values = key if isinstance(key, tuple) else (key,)
    return tuple((0, v) if isinstance(v, (int, float)) else (1, str(v)) for v in values)


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


def _sweep_figure(explorer: Explorer, current, label_of: Callable[[object], str], smooth: int):
    """PSNR of every cached fit (each named, the current one in black) beside the current FBC
    bands; legends beside the panels, never over the curves."""
    result = explorer.results.get(current)
    if result is None:
        return None, "move a control to fit"
    label = label_of(current)
    fig, (left, right) = plots._panels(2, width=4.6, height=3.4)
    others = {label_of(key): r for key, r in sorted(explorer.results.items(),
                                                   key=lambda kv: _sortable(kv[0]))
              if key != current}
    if others:
        colours = [_OTHER_COLOURS[i % len(_OTHER_COLOURS)] for i in range(len(others))]
        plots.plot_psnr(others, ax=left, colours=colours)
    plots.plot_psnr({f"{label} (shown)": result}, ax=left, colours=["#000000"])
    left.set_title("PSNR of every setting fitted")
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
