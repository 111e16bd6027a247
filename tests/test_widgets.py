"""The notebooks' explorers: built without fitting; moving a control fits in a worker thread
(debounced, a newer value cancels the fit in flight), then redraws; errors leave the state as
it was; figures in the projector style; the iteration scrubber.

Controls are moved by setting ``.value`` (what a frontend does through the comm); the fits are
tiny (40 px, 8 channels, a few iterations). ``explorer.wait()`` joins the worker.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("ipywidgets")

from dipspec import data, experiments, fitting, measure, tasks, widgets  # noqa: E402
from dipspec.fitting import FitResult  # noqa: E402
from dipspec.viz import plots  # noqa: E402
from dipspec.viz import widgets as viz_widgets  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    return experiments.configure("lipschitz_control", "quick", image_size=40, channels=8,
                                 iterations=6, device="cpu")


@pytest.fixture(scope="module")
def task():
    return tasks.Denoise(clean=data.load_image("camera", size=40), seed=0)


def png(explorer) -> bytes:
    return bytes(explorer.image.value)


def png_width(image: bytes) -> int:
    from PIL import Image

    return Image.open(io.BytesIO(image)).size[0]


def test_lambda_explorer_builds_without_fitting(setup, task):
    explorer = widgets.lambda_explorer(task, setup)
    assert explorer.fits == 0 and explorer.results == {}
    assert "move a control" in explorer.status.value
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    slider = explorer.controls["lipschitz_lambda"]
    assert (slider.min, slider.max, slider.step) == (0.0, 2.0, 0.1)  # the interesting range
    assert "Lipschitz bound λ per layer" in slider.description


def test_lambda_slider_fits_in_the_background_redraws_and_caches(setup, task):
    explorer = widgets.lambda_explorer(task, setup, iterations=5, debounce=0)
    slider = explorer.controls["lipschitz_lambda"]
    slider.value = 0.7
    # at once, before the fit is done: the bar and the status name the new value
    assert explorer.progress.description.startswith("fitting λ = 0.7 …")
    assert "fitting <b>λ = 0.7</b>" in explorer.status.value
    explorer.wait(60)
    assert explorer.fits == 1 and explorer.renders == 1
    assert explorer.results[0.7].model.lipschitz_lambda == pytest.approx(0.7)
    assert len(explorer.results[0.7].history) == 5
    assert explorer.progress.layout.visibility == "hidden"
    assert "λ = 0.7</b>: peak" in explorer.status.value
    assert "<b>λ = 0.7</b>" in explorer.fitted.value
    first = png(explorer)
    assert first.startswith(b"\x89PNG")
    # projector style: twice the pixels of the displayed width
    assert png_width(first) == pytest.approx(2 * int(explorer.image.layout.width[:-2]), abs=8)
    slider.value = 0.0  # plain DIP
    explorer.wait(60)
    assert explorer.fits == 2 and explorer.results[0.0].model.lipschitz_lambda is None
    assert png(explorer) != first
    assert "plain DIP" in explorer.fitted.value and "<b>plain DIP</b>" in explorer.fitted.value
    slider.value = 0.7  # cached: redraw without a fit
    explorer.wait(60)
    assert explorer.fits == 2 and explorer.renders == 3
    assert explorer._repr_mimebundle_()["image/png"] == explorer.png  # static views see it


def test_quick_moves_fit_only_the_last_value(setup, task):
    explorer = widgets.lambda_explorer(task, setup, iterations=4, debounce=0.2)
    slider = explorer.controls["lipschitz_lambda"]
    for value in (0.5, 0.6, 0.8):  # three arrow-key presses
        slider.value = value
    explorer.wait(60)
    assert list(explorer.results) == [0.8] and explorer.fits == 1


def test_a_new_value_cancels_the_fit_in_flight(setup, task):
    started, release = threading.Event(), threading.Event()

    def make_fit(key, callback):
        if key == "slow":
            started.set()
            release.wait(10)  # the fit runs on until the new value arrives
            assert callback({"iteration": 0, "iterations": 10})  # asked to stop
        return flat_ratio_fit(50)

    import ipywidgets as w

    control = w.Dropdown(options=["slow", "fast"], value="fast")
    explorer = widgets.Explorer({"choice": control}, lambda e: (None, None),
                                key=lambda: control.value, make_fit=make_fit, debounce=0)
    explorer.update()
    explorer.wait(10)
    control.value = "slow"
    assert started.wait(10)
    control.value = "fast"  # cached: shown at once, the slow fit is cancelled
    release.set()
    explorer.wait(10)
    assert explorer.cancelled == 1 and "slow" not in explorer.results
    assert explorer.fits == 1 and explorer.progress.layout.visibility == "hidden"


def test_a_failed_fit_says_so_and_keeps_the_state(setup, task):
    import ipywidgets as w

    def make_fit(key, callback):
        if key == "bad":
            raise ValueError("the image is too small")
        return flat_ratio_fit(50)

    control = w.Dropdown(options=["good", "bad"], value="good")
    explorer = widgets.Explorer({"choice": control}, lambda e: (None, "shown: good"),
                                key=lambda: control.value, make_fit=make_fit, debounce=0)
    explorer.update()
    explorer.wait(10)
    control.value = "bad"
    explorer.wait(10)
    assert list(explorer.results) == ["good"] and explorer.fits == 1
    assert explorer.error == "ValueError: the image is too small"
    assert "the fit for bad failed" in explorer.status.value
    assert "still shows the last fitted setting" in explorer.status.value
    assert explorer.progress.layout.visibility == "hidden"


def test_lambda_explorer_shows_given_results_at_once(setup, task):
    results = experiments.sweep_lambda(task, setup, lambdas=(1.0, 1.2, 1.4), plain=False,
                                       progress=False)
    explorer = widgets.lambda_explorer(task, setup, results, value=1.2)
    assert explorer.fits == 0 and explorer.renders == 1 and png(explorer)
    assert "λ = 1.2" in explorer.status.value
    slider = explorer.controls["lipschitz_lambda"]
    assert (slider.min, slider.max, slider.step) == (1.0, 1.4, 0.2)  # the grid's range
    assert explorer.fitted.value.count("λ = ") == 3 and "<b>λ = 1.2</b>" in explorer.fitted.value


def test_upsampling_explorer_switches_mode_and_sigma(setup, task):
    explorer = widgets.upsampling_explorer(task, setup, iterations=4, debounce=0)
    assert explorer.fits == 0
    mode, sigma = explorer.controls["upsample_mode"], explorer.controls["gaussian_sigma"]
    assert sigma.description == "Gaussian kernel σ (px)"
    mode.value = "nearest"
    explorer.wait(60)
    assert explorer.fits == 1 and sigma.disabled
    assert explorer.results[("nearest", 0.0)].model.upsample == "nearest"
    mode.value = "gaussian"
    explorer.wait(60)
    sigma.value = 1.5
    explorer.wait(60)
    assert not sigma.disabled
    fitted = explorer.results[("gaussian", 1.5)].model
    assert fitted.upsample == "gaussian" and fitted.gaussian_sigma == (1.5,) * 5
    assert explorer.fits == explorer.renders == 3  # nearest, gaussian σ 0.5, gaussian σ 1.5


def test_status_words_read_right():
    assert viz_widgets._gap_words(25.43, 25.4300001) == "at the peak"
    assert viz_widgets._gap_words(25.43, 25.43) == "at the peak"
    assert viz_widgets._gap_words(25.43, 25.0) == "0.43 dB below the peak"


def test_projector_style_text_is_12_pt_and_restored(setup, task):
    result = flat_ratio_fit(50)
    with plots.projector():
        fig, (ax,) = plots._panels(1)
        plots.plot_fbc(result, ax=ax, title="FBC")
        sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
                 if getattr(t, "get_text", lambda: "")()]
        seen = []  # another thread (the notebook's own figures) keeps the house style
        other = threading.Thread(target=lambda: seen.append(plots._style.get()["font.size"]))
        other.start()
        other.join()
    assert sizes and min(sizes) >= 12 and seen == [9]
    fig, (ax,) = plots._panels(1)
    assert plots._STYLE["font.size"] == 9 and "legend.fontsize" not in plots._STYLE
    import matplotlib

    assert matplotlib.rcParams["font.size"] == 9  # the house style again after the block


def flat_ratio_fit(length: int = 600) -> FitResult:
    t = np.arange(length, dtype=float)
    frame = pd.DataFrame({"iteration": t.astype(int), "loss": 0.0,
                          "psnr": 30 - 10 * np.exp(-t / 30), "ratio": 4 + 6 * np.exp(-t / 40)})
    for k in range(1, 6):
        frame[f"fbc_{k}"] = 0.5
    image = torch.zeros(1, 1, 8, 8)
    return FitResult(output=image, best=image, history=frame, stop_iteration=None,
                     task=tasks.Denoise(observation=image, clean=image),
                     model=torch.nn.Identity())


def test_stopping_explorer_reapplies_the_rule_without_refitting():
    results = {"flat": flat_ratio_fit()}
    explorer = widgets.stopping_explorer(results, smooth=10, debounce=0)
    assert explorer.renders == 1 and explorer.fits == 0
    before_png, before_text = png(explorer), explorer.status.value
    assert "stop iteration" in before_text
    explorer.controls["stop_window"].value = 20
    assert explorer.renders == 2 and explorer.fits == 0
    assert explorer.status.value != before_text and png(explorer) != before_png
    explorer.controls["stop_eps"].value = 0.0001
    assert "0.0001" in explorer.status.value


def test_log_spectrum_is_numpys():
    image = torch.rand(2, 3, 8, 6, dtype=torch.float64)
    grey = measure.to_grey(image)[:, 0].numpy()
    expected = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(grey), axes=(-2, -1))))
    np.testing.assert_allclose(measure.log_spectrum(image).numpy(), expected, atol=1e-12)


def test_iteration_explorer_scrubs_the_kept_outputs(task):
    from dipspec.nn import Decoder

    kept = fitting.log_spaced_iterations(30, 6)
    result = fitting.fit(task, Decoder(channels=8, out_channels=1, lipschitz_lambda=None),
                         iterations=30,
                         keep_outputs=kept, progress=False, seed=0)
    assert sorted(result.snapshots) == kept
    explorer = widgets.iteration_explorer(result, "plain DIP", debounce=0)
    slider = explorer.controls["iteration"]
    assert list(slider.options) == kept and explorer.renders == 1
    before = png(explorer)
    slider.value = kept[-1]
    assert png(explorer) != before and explorer.fits == 0
    status = explorer.status.value
    assert f"iteration {kept[-1]}" in status and "PSNR" in status and "FBC bands 1–5" in status
    with pytest.raises(ValueError, match="keep_outputs"):
        widgets.iteration_explorer(flat_ratio_fit(10))


# --------------------------------------------------------------------------------------------
# the notebooks' composed figures (dipspec.plots.figure_*)
# --------------------------------------------------------------------------------------------


def test_composed_figures_render_and_save(tmp_path, setup, task):
    import json

    import matplotlib

    matplotlib.use("Agg", force=True)
    from dipspec import plots

    runs = experiments.sweep_lambda(task, setup, lambdas=(1.0,), progress=False)
    fig = plots.figure_bands(runs, smooth=3, mark_peak=True)
    assert len(fig.axes) == 1 + len(runs)
    stop = flat_ratio_fit()
    assert len(plots.figure_stop({"flat": stop}, stops={"flat": 201}).axes) == 2  # + twin
    assert len(plots.figure_quickstart(runs["λ = 1"], smooth=3).axes) == 5
    enhance = experiments.restore_all(
        {"detail": tasks.Enhance(clean=data.load_image("camera", size=40))},
        experiments.Setup(**{**setup.__dict__, "extra": {"task_iterations": 3}}), progress=False)
    assert len(plots.figure_restorations({**runs, **enhance}).axes) == 3 * (len(runs) + 1)
    fig = plots.figure_applications({"camera": {"ours": runs["λ = 1"], "plain": runs["plain DIP"]}})
    png = plots.save_figure(fig, "applications", setup.provenance(runs), folder=tmp_path)
    assert png.read_bytes().startswith(b"\x89PNG")
    meta = json.loads((tmp_path / "applications.json").read_text())
    assert meta["preset"] == "quick" and meta["image_size"] == [40, 40]


def test_the_stopping_figure_keeps_a_second_scale_apart():
    from dipspec.viz import studies

    rows = pd.DataFrame({
        "preset": ["quick", "quick", "wide", "wide"], "task": ["denoise"] * 4,
        "rule": ["paper", "discrepancy"] * 2, "gap_to_peak_db": [0.5, 0.2, 2.0, 0.1],
        "fired": [True, True, True, False], "saved": [0.5, 0.8, 0.9, 0.0],
        "peaked": [True] * 4})
    fig = studies.figure_stopping(rows)
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert labels == ["denoise", "denoise · wide"]
    # the wide group's fire rate is its own: discrepancy did not fire on the one wide fit
    wide_bars = [p.get_height() for p in fig.axes[1].containers[1]]
    assert wide_bars == [1.0, 0.0]
