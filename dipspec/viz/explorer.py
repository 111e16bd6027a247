"""The explorer: a box of controls, a progress bar, a plot and a status line, with the state
behind it — fits in a worker thread, debounced, a newer value cancelling the fit in flight
(:mod:`dipspec.viz.widgets` builds the notebooks' explorers on it).

Moving a control never blocks the kernel: after a short pause (the last of several quick moves
wins) a value already fitted redraws at once, and any other value is fitted in a worker thread
while the plot keeps the old curves and the bar says "fitting λ = 1.6 … 37 %". An error is
reported in the status line and leaves the explorer as it was. The plot is a PNG in an
``ipywidgets.Image`` drawn in the projector style (:func:`dipspec.viz.plots.projector`: 12-pt
text and up at the displayed size, twice the pixels for high-dpi screens); a displayed explorer
also carries that PNG as ``image/png``, so a static view of a saved notebook shows the last
figure. ipywidgets and matplotlib are imported only when an explorer is built.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Hashable

from ..fitting import FitResult
from . import plots

__all__ = ["DEBOUNCE_S", "Explorer", "sortable"]

#: CSS pixels per inch: the plot is shown at its size in inches, so 12 pt reads as 12 pt.
_CSS_DPI = 96
#: Pixels per CSS pixel of the PNG (sharp on high-dpi screens and projectors).
_PIXEL_RATIO = 2
#: Seconds a control must rest before its value is fitted (arrow-key presses coalesce).
DEBOUNCE_S = 0.3
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
        # controls wrap onto further lines rather than squeezing a slider's track to nothing
        row = w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([row, self.fitted, self.progress, self.image, self.status])
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
                         for k in sorted(self.results, key=sortable)]
                self.fitted.value = ("already fitted (instant): " + " · ".join(names)
                                     + "; other values are fitted when chosen")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if self.png:  # what a static view of the saved notebook shows
            data["image/png"] = self.png
        return bundle


def sortable(key) -> tuple:
    """A cache key as a sort key: numbers in order, then names."""
    values = key if isinstance(key, tuple) else (key,)
    return tuple((0, v) if isinstance(v, (int, float)) else (1, str(v)) for v in values)
