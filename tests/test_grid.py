"""The precomputed grid (image × λ × upsampling × σ): its points, fitting it with fit_many as the
single fits would, saving and loading it without loss beyond the documented 8-bit outputs, the
errors of a bad file, and the grid explorer scrubbing it (on the grid: no fit; off it: one
background fit that joins the grid).

Tiny fits: 40 px, 8 channels, 12 iterations.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dipspec import experiments
from dipspec.experiments.grid import GRID_FORMAT, GridKey, describe, grid_keys, load_grid
from dipspec.fitting import log_spaced_iterations


@pytest.fixture(scope="module")
def setup():
    return experiments.configure("lipschitz_control", "quick", images=["camera"], image_size=40,
                                 channels=8, iterations=12, device="cpu")


@pytest.fixture(scope="module")
def grid(setup):
    return experiments.precompute_grid(setup, lambdas=(0, 1.2), sigmas=(0.5, 1.0), keep=5,
                                       progress=False)


def test_grid_keys_cross_image_lambda_upsampling_and_sigma_for_gaussian_only():
    keys = grid_keys(["a", "b"], [0, 1.2], ["bilinear", "gaussian"], [0.5, 1.0])
    assert len(keys) == 2 * (2 + 2 * 2)
    assert GridKey("a", 0.0, "bilinear", 0.0) in keys
    assert GridKey("b", 1.2, "gaussian", 1.0) in keys
    assert all(k.gaussian_sigma == 0.0 for k in keys if k.upsample == "bilinear")
    assert GridKey.of("a", None, "bilinear", 0.7) == GridKey("a", 0.0, "bilinear", 0.0)
    assert GridKey.of("a", 1.234, "gaussian", 0.456) == GridKey("a", 1.23, "gaussian", 0.46)
    with pytest.raises(ValueError, match="unknown upsampling 'cubic'"):
        GridKey.of("a", 1, "cubic")
    assert describe(GridKey("a", 0.0, "bilinear", 0.0), image=False) == "plain DIP"


def test_the_grid_holds_every_point_and_each_matches_its_single_fit(setup, grid):
    assert set(grid.results) == set(grid_keys(["camera"], [0, 1.2], ["bilinear", "gaussian"],
                                              [0.5, 1.0]))
    assert grid.values("lipschitz_lambda") == [0.0, 1.2]
    assert grid.values("gaussian_sigma") == [0.5, 1.0]
    key = GridKey("camera", 1.2, "gaussian", 0.5)
    alone = grid.fit(key, keep=5)  # the point fitted on its own, as an off-grid refit is
    together = grid.results[key]
    assert sorted(together.snapshots) == sorted(alone.snapshots) == log_spaced_iterations(12, 5)
    assert np.allclose(together.history["psnr"], alone.history["psnr"], atol=1e-3)
    # a grouped network rounds differently from a single one (fit_together: up to rounding)
    assert torch.allclose(together.output, alone.output, atol=2e-3)
    assert together.model.lipschitz_lambda == 1.2


def test_a_saved_grid_loads_back_with_its_histories_and_8_bit_outputs(grid, tmp_path):
    path = grid.save(tmp_path / "grid.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.json", "grid.npz"]
    info = json.loads((tmp_path / "grid.json").read_text())
    assert info["points"] == 6 and info["settings"]["iterations"] == 12
    loaded = load_grid(path)
    assert set(loaded.results) == set(grid.results) and loaded.settings == grid.settings
    for key, result in grid.results.items():
        back = loaded.results[key]
        pd.testing.assert_frame_equal(back.history, result.history, check_dtype=False)
        assert back.history["iteration"].dtype == np.int64
        assert sorted(back.snapshots) == sorted(result.snapshots)
        for it, shot in result.snapshots.items():  # 8-bit: within half a level
            assert (back.snapshots[it] - shot.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6
        assert back.model is None
    task = loaded.task("camera")
    assert torch.equal(task.observation, grid.task("camera").observation.float())
    assert loaded.setup.iterations == 12 and loaded.setup.preset.channels == 8


def test_bad_grid_files_get_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no grid file at .*precompute_grid"):
        load_grid(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a grid")
    with pytest.raises(ValueError, match="is not a dipspec grid file"):
        load_grid(tmp_path / "text.npz")
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)  # a zip cut short
    with pytest.raises(ValueError, match="is not a dipspec grid file"):
        load_grid(tmp_path / "torn.npz")
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps({"format": GRID_FORMAT + 1})))
    with pytest.raises(ValueError, match="precompute it again"):
        load_grid(tmp_path / "old.npz")


def test_save_refuses_another_suffix_and_leaves_nothing(grid, tmp_path):
    with pytest.raises(ValueError, match="ends in .npz"):
        grid.save(tmp_path / "grid.pt")
    assert list(tmp_path.iterdir()) == []


def test_grid_explorer_scrubs_the_grid_without_fitting_and_refits_off_it(grid, tmp_path):
    pytest.importorskip("ipywidgets")
    from dipspec import widgets

    loaded = load_grid(grid.save(tmp_path / "grid.npz"))
    explorer = widgets.grid_explorer(loaded, background=True, debounce=0)
    lam, mode, sigma = (explorer.controls[k] for k in
                        ("lipschitz_lambda", "upsample_mode", "gaussian_sigma"))
    assert (lam.min, lam.max, lam.step) == (0.0, 1.2, 1.2)
    assert (sigma.min, sigma.max, sigma.step) == (0.5, 1.0, 0.5)
    first = bytes(explorer.image.value)
    mode.value = "gaussian"
    sigma.value = 1.0
    explorer.wait(60)
    assert explorer.fits == 0 and bytes(explorer.image.value) != first
    assert "λ = 1.2, gaussian σ = 1" in explorer.status.value
    lam.value = 0.6  # off the grid: one fit in the background, then it joins the grid
    explorer.wait(120)
    assert explorer.fits == 1
    key = GridKey("camera", 0.6, "gaussian", 1.0)
    assert key in loaded.results and "λ = 0.6" in explorer.status.value
    assert "<b>λ = 0.6, gaussian σ = 1</b>" in explorer.fitted.value
