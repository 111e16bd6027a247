"""The notebooks' explorers: built without fitting, refit and redraw when a control moves.

Controls are moved by setting ``.value`` (what a frontend does through the comm); the fits are
tiny (40 px, 8 channels, a few iterations).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("ipywidgets")

from dipspec import data, experiments, tasks, widgets  # noqa: E402
from dipspec.fitting import FitResult  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    return experiments.configure("lipschitz_control", "quick", image_size=40, channels=8,
                                 iterations=6, device="cpu")


@pytest.fixture(scope="module")
def task():
    return tasks.Denoise(clean=data.load_image("camera", size=40), seed=0)


def png(explorer) -> bytes:
    return bytes(explorer.image.value)


def test_lambda_explorer_builds_without_fitting(setup, task):
    explorer = widgets.lambda_explorer(task, setup)
    assert explorer.fits == 0 and explorer.results == {}
    assert "move a control" in explorer.status.value
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_lambda_slider_refits_redraws_and_caches(setup, task):
    explorer = widgets.lambda_explorer(task, setup, iterations=5)
    slider = explorer.controls["lipschitz_lambda"]
    slider.value = 0.7
    assert explorer.fits == 1 and explorer.renders == 1
    assert explorer.results[0.7].model.lipschitz_lambda == pytest.approx(0.7)
    assert len(explorer.results[0.7].history) == 5
    assert png(explorer).startswith(b"\x89PNG")
    assert explorer.progress.value == explorer.progress.max == 5
    first = png(explorer)
    slider.value = 0.0  # plain DIP
    assert explorer.fits == 2 and explorer.results[0.0].model.lipschitz_lambda is None
    assert png(explorer) != first
    slider.value = 0.7  # cached: redraw without a fit
    assert explorer.fits == 2 and explorer.renders == 3


def test_lambda_explorer_shows_given_results_at_once(setup, task):
    results = experiments.sweep_lambda(task, setup, lambdas=(1.2,), plain=False, progress=False)
    explorer = widgets.lambda_explorer(task, setup, results, value=1.2)
    assert explorer.fits == 0 and explorer.renders == 1 and png(explorer)
    assert "λ = 1.2" in explorer.status.value


def test_upsampling_explorer_switches_mode_and_sigma(setup, task):
    explorer = widgets.upsampling_explorer(task, setup, iterations=4)
    assert explorer.fits == 0
    mode, sigma = explorer.controls["upsample_mode"], explorer.controls["gaussian_sigma"]
    mode.value = "nearest"
    assert explorer.fits == 1 and sigma.disabled
    assert explorer.results[("nearest", 0.0)].model.upsample == "nearest"
    mode.value = "gaussian"
    sigma.value = 1.5
    assert not sigma.disabled
    fitted = explorer.results[("gaussian", 1.5)].model
    assert fitted.upsample == "gaussian" and fitted.gaussian_sigma == (1.5,) * 5
    assert explorer.fits == explorer.renders == 3  # nearest, gaussian σ 0.5, gaussian σ 1.5


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
    explorer = widgets.stopping_explorer(results, smooth=10)
    assert explorer.renders == 1 and explorer.fits == 0
    before_png, before_text = png(explorer), explorer.status.value
    assert "stop iteration" in before_text
    explorer.controls["stop_window"].value = 20
    assert explorer.renders == 2 and explorer.fits == 0
    assert explorer.status.value != before_text and png(explorer) != before_png
    explorer.controls["stop_eps"].value = 0.0001
    assert "0.0001" in explorer.status.value


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
