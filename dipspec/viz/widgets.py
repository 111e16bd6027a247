"""Interactive explorers for the notebooks (ipywidgets 8, JupyterLab 4).

Each explorer is a box of controls, a progress bar, a plot and a status line. Moving a control
refits (the progress bar follows the fit) and redraws; fits are cached by their control values,
so returning to a setting redraws at once. Building an explorer never fits: it draws the results
it is given (or a hint to move a control), so a notebook run headless (nbval, papermill) passes
the widget cells in well under a second.

The plot is a PNG in an ``ipywidgets.Image`` (it renders the same in JupyterLab, VS Code and a
static view, and tests can see it change). ipywidgets and matplotlib are imported only when an
explorer is built.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

from .. import experiments
from ..fitting import FitResult
from ..nn import UPSAMPLE_MODES
from ..tasks import Task
from . import plots

__all__ = ["Explorer", "lambda_explorer", "stopping_explorer", "upsampling_explorer"]

_PLOT_DPI = 80


class Explorer:
    """A widget box with the state behind it (displayed as the box in a notebook).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The box: controls, progress bar, plot, status line.
    controls : dict
        The controls by name (``"lipschitz_lambda"``, ``"upsample_mode"``, …).
    results : dict
        Fits made or given so far, keyed by their control values.
    renders : int
        How many times the plot was drawn.
    fits : int
        How many fits the controls triggered.
    """

    def __init__(self, controls: dict, draw: Callable[[Explorer], tuple], *,
                 refit: Callable[[Explorer], FitResult | None] | None = None,
                 results: dict | None = None, hint: str = "") -> None:
        import ipywidgets as w

        self.controls = controls
        self.results = dict(results or {})
        self.renders = 0
        self.fits = 0
        self._draw, self._refit = draw, refit
        self.progress = w.IntProgress(value=0, min=0, max=1, description="fit",
                                      layout=w.Layout(width="60%"))
        self.progress.layout.visibility = "hidden"
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.status = w.HTML(value=hint)
        self.widget = w.VBox([w.HBox(list(controls.values())), self.progress, self.image,
                              self.status])
        for control in controls.values():
            control.observe(self._changed, names="value")
        self.redraw()

    def _changed(self, change) -> None:
        self.update()

    def update(self) -> None:
        """Refit if needed (with the progress bar), then redraw."""
        if self._refit is not None:
            self._refit(self)
        self.redraw()

    def redraw(self) -> None:
        fig, text = self._draw(self)
        if fig is not None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=_PLOT_DPI, bbox_inches="tight")
            import matplotlib.pyplot as plt

            plt.close(fig)
            self.image.value = buffer.getvalue()
            self.renders += 1
        if text is not None:
            self.status.value = text

    def track(self, iterations: int) -> Callable[[dict], None]:
        """A fit callback that moves the progress bar (about a hundred updates per fit)."""
        bar = self.progress
        bar.max, bar.value = iterations, 0
        bar.layout.visibility = "visible"
        every = max(1, iterations // 100)

        def callback(info: dict) -> None:
            if info["iteration"] % every == 0 or info["iteration"] == iterations - 1:
                bar.value = info["iteration"] + 1

        return callback

    def done(self) -> None:
        self.progress.layout.visibility = "hidden"
        self.fits += 1

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _slider(description: str, value: float, low: float, high: float, step: float):
    import ipywidgets as w

    return w.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         continuous_update=False, readout_format=".2f")


def _fit_with_progress(explorer: Explorer, task: Task, model, setup: experiments.Setup,
                       iterations: int, input_kind: str = "fourier") -> FitResult:
    callback = explorer.track(iterations)
    try:
        return experiments.fit_model(task, model, setup, iterations=iterations,
                                     input_kind=input_kind, callbacks=[callback], progress=False)
    finally:
        explorer.done()


def _sweep_figure(explorer: Explorer, current, label_of: Callable[[object], str], smooth: int):
    """PSNR of every cached fit (the current one highlighted) beside the current FBC bands."""
    result = explorer.results.get(current)
    if result is None:
        return None, "move a control to fit"
    label = label_of(current)
    fig, (left, right) = plots._panels(2, width=3.6, height=2.6)
    others = {label_of(key): r for key, r in explorer.results.items() if key != current}
    if others:
        plots.plot_psnr(others, ax=left, colours=["#c8c8c8"] * len(others))
    plots.plot_psnr({label: result}, ax=left, colours=[plots.RUN_COLOURS[1]])
    left.set_title("PSNR (grey: the other settings fitted)")
    left.legend(fontsize=6)
    peak_it, peak_db = experiments.peak(result, smooth)
    plots.plot_fbc(result, ax=right, mark=peak_it, title=f"FBC ({label})")
    final = experiments.summary({label: result}, smooth).iloc[0]["final PSNR"]
    text = (f"<b>{label}</b>: peak {peak_db:.2f} dB at iteration {peak_it}, "
            f"final {final:.2f} dB ({peak_db - final:.2f} dB below the peak)")
    return fig, text


def _lambda_key(result: FitResult) -> float:
    value = getattr(result.model, "lipschitz_lambda", None)
    return round(float(value or 0.0), 2)


def lambda_explorer(task: Task, setup: experiments.Setup,
                    results: Mapping[str, FitResult] | None = None,
                    iterations: int | None = None, value: float | None = None) -> Explorer:
    """A λ slider (0 = plain DIP) that refits the decoder and redraws PSNR and FBC (SPEC §3).

    Parameters
    ----------
    task : Task
    setup : experiments.Setup
        Width, seed and device of the refits.
    results : mapping of FitResult, optional
        Fits already made (e.g. by :func:`dipspec.experiments.sweep_lambda`): shown at once
        and reused when the slider lands on their λ.
    iterations : int, optional
        Iterations of each refit (default: the setup's).
    value : float, optional
        Initial λ (default: the right λ of the setup's triple).
    """
    iterations = iterations or setup.iterations
    cached = {_lambda_key(r): r for r in (results or {}).values()}
    start = round(float(value if value is not None else setup.lambdas[len(setup.lambdas) // 2]),
                  2)
    slider = _slider("λ", start, 0.0, 4.0, 0.1)

    def refit(explorer: Explorer) -> None:
        lam = round(float(slider.value), 2)
        if lam not in explorer.results:
            model = experiments.make_model("decoder", setup, task.channels,
                                           lipschitz_lambda=lam or None)
            explorer.results[lam] = _fit_with_progress(explorer, task, model, setup, iterations)

    def label_of(lam: float) -> str:
        return f"λ = {lam:g}" if lam else "plain DIP"

    def draw(explorer: Explorer):
        return _sweep_figure(explorer, round(float(slider.value), 2), label_of, setup.smooth)

    return Explorer({"lipschitz_lambda": slider}, draw, refit=refit, results=cached)


def _upsampling_key(result: FitResult) -> tuple[str, float]:
    mode = getattr(result.model, "upsample", "bilinear")
    sigmas = getattr(result.model, "gaussian_sigma", None) or (0.0,)
    return mode, round(float(sigmas[-1]), 2) if mode == "gaussian" else 0.0


def upsampling_explorer(task: Task, setup: experiments.Setup,
                        results: Mapping[str, FitResult] | None = None,
                        iterations: int | None = None,
                        lipschitz_lambda: float | str | None = "preset") -> Explorer:
    """Choose the upsampling mode and the Gaussian σ; refit the decoder and redraw (SPEC §4).

    Parameters
    ----------
    task, setup, results, iterations
        As in :func:`lambda_explorer` (``results`` from :func:`dipspec.experiments.sweep_sigma`).
    lipschitz_lambda : float, "preset" or None
        λ of every refit, as in :func:`dipspec.experiments.sweep_sigma` (default ``"preset"``:
        the setup's ``gaussian_lambda``; ``None``: no control). Pass the sweep's value so
        that its fits are reused.
    """
    import ipywidgets as w

    lipschitz_lambda = experiments.sigma_sweep_lambda(setup, lipschitz_lambda)

    iterations = iterations or setup.iterations
    cached = {_upsampling_key(r): r for r in (results or {}).values()}
    sigma = _slider("σ", float(setup.sigmas[len(setup.sigmas) // 2]), 0.0, 2.0, 0.1)
    mode = w.Dropdown(options=list(UPSAMPLE_MODES), value="gaussian", description="upsampling")

    def key() -> tuple[str, float]:
        return mode.value, round(float(sigma.value), 2) if mode.value == "gaussian" else 0.0

    def refit(explorer: Explorer) -> None:
        sigma.disabled = mode.value != "gaussian"
        chosen = key()
        if chosen not in explorer.results:
            model = experiments.make_model(
                "decoder", setup, task.channels, lipschitz_lambda=lipschitz_lambda,
                upsample=chosen[0], gaussian_sigma=chosen[1] if chosen[0] == "gaussian" else None)
            explorer.results[chosen] = _fit_with_progress(explorer, task, model, setup,
                                                          iterations)

    def label_of(chosen: tuple[str, float]) -> str:
        return f"{chosen[0]}, σ = {chosen[1]:g}" if chosen[0] == "gaussian" else chosen[0]

    def draw(explorer: Explorer):
        return _sweep_figure(explorer, key(), label_of, setup.smooth)

    return Explorer({"upsample_mode": mode, "gaussian_sigma": sigma}, draw, refit=refit,
                    results=cached)


def stopping_explorer(results: Mapping[str, FitResult], smooth: int,
                      windows: Sequence[int] = (10, 500), window: int = 100,
                      eps: float = 0.01) -> Explorer:
    """Sliders for the stopping rule's window n and threshold ε (SPEC §6) over finished fits.

    The rule is re-applied to each fit's logged ratios (no refit): the plot marks the new stop
    and the status line shows the table of :func:`dipspec.experiments.stop_table`.
    """
    import ipywidgets as w

    window_slider = w.IntSlider(value=window, min=windows[0], max=windows[1], step=10,
                                description="window n", continuous_update=False)
    eps_slider = w.FloatLogSlider(value=eps, base=10, min=-4, max=-1, step=0.25,
                                  description="ε", continuous_update=False,
                                  readout_format=".4f")

    def draw(explorer: Explorer):
        n, threshold = int(window_slider.value), float(eps_slider.value)
        stops = {label: experiments.stop_at(r, n, threshold) for label, r in results.items()}
        fig = plots.figure_stop(results, stops=stops)
        table = experiments.stop_table(results, smooth, n, threshold)
        return fig, f"<p>window n = {n}, ε = {threshold:.4g}</p>" + table.to_html()

    return Explorer({"stop_window": window_slider, "stop_eps": eps_slider}, draw,
                    results=dict(results))
