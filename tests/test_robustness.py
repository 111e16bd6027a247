"""The λ-robustness runs (issue 14): journal, trajectories with the variance curves."""

import numpy as np
import pandas as pd
import pytest

from dipspec.experiments import robustness, trajectories
from dipspec.presets import QUICK, WIDE


def test_lambdas_around_the_preset():
    assert robustness.lambdas_around(QUICK) == (None, 1.0, 1.2, 1.4)


def test_a_run_journals_each_fit_and_keeps_its_trajectory(tmp_path, monkeypatch):
    options = dict(preset=QUICK.with_(channels=8), images=["astronaut"], seeds=[0],
                   iterations=130, progress=False)
    path = robustness.run_robustness(tmp_path, **options)
    rows = robustness.robustness_rows(path)
    assert sorted(rows["lambda"]) == ["1", "1.2", "1.4", "plain"]
    for _, row in rows.iterrows():
        trajectory = trajectories.load_trajectory(tmp_path / row["trajectory"])
        assert len(trajectory) == 130
        assert set(trajectories.TRAJECTORY_COLUMNS) <= set(trajectory.columns)
        # the recorded PSNR is the journal's, and the windowed variance exists once the
        # 100-output window is full, not before
        assert np.isclose(trajectory["psnr"].max(), row["peak_psnr"], atol=1e-4)
        wmv = trajectory["wmv"].to_numpy()
        assert np.isnan(wmv[:99]).all() and np.isfinite(wmv[99:]).all() and (wmv[99:] > 0).all()
        assert np.isfinite(trajectory["emv"]).all()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished fit ran again")

    monkeypatch.setattr(trajectories, "fit_many", must_not_run)
    robustness.run_robustness(tmp_path, **options)


def test_results_are_written_with_means_per_lambda(tmp_path):
    path = robustness.run_robustness(tmp_path, preset=QUICK.with_(channels=4), seeds=[0, 1],
                                     images=["astronaut"], iterations=40, progress=False)
    means = robustness.write_results([path], tmp_path / "table", preset="quick")
    rows = robustness.robustness_rows(path)
    assert means.loc[("quick", "plain"), "fits"] == 2
    assert abs(means.loc[("quick", "1.2"), "peak_psnr"]
               - rows.loc[rows["lambda"] == "1.2", "peak_psnr"].mean()) < 1e-3
    assert {p.suffix for p in tmp_path.glob("table.*")} == {".csv", ".md", ".json"}
    assert "## Means per preset and λ" in (tmp_path / "table.md").read_text()
    table = robustness.read_results(tmp_path / "table.csv")
    assert sorted(set(table["lambda"])) == ["1", "1.2", "1.4", "plain"]
    # the recommended rule replayed on each fit: where it fires the loss has reached the
    # observation's noise variance, and the PSNR reported is the trajectory's there
    from dipspec.data import estimate_noise_sigma
    from dipspec.experiments.stopping_eval import _observation
    for _, row in table.iterrows():
        fit = rows[(rows["seed"] == row["seed"]) & (rows["lambda"] == row["lambda"])].iloc[0]
        trajectory = trajectories.load_trajectory(tmp_path / fit["trajectory"])
        sigma = estimate_noise_sigma(_observation({**fit, "task": "denoise"}))
        below = np.nonzero(trajectory["loss"].to_numpy() <= sigma ** 2)[0]
        expected = int(below[0]) if len(below) else None
        got = None if pd.isna(row["auto_stop_iteration"]) else int(row["auto_stop_iteration"])
        assert got == expected
        at = trajectory["psnr"].iloc[-1 if expected is None else expected]
        assert abs(row["auto_stop_psnr"] - at) < 1e-3


def test_a_wide_run_killed_mid_way_continues_from_its_checkpoint(tmp_path, monkeypatch):
    """Beyond the quick scale a group of fits takes hours: it checkpoints, and the same call
    after a kill continues to the rows of an uninterrupted run (the quick scale does not)."""
    wide = WIDE.with_(channels=4, image_size=40)
    options = dict(images=["astronaut"], seeds=[0], iterations=23, progress=False)
    monkeypatch.setattr(robustness, "CHECKPOINT_EVERY", 5)
    whole = robustness.robustness_rows(
        robustness.run_robustness(tmp_path / "whole", preset=wide, **options))
    recorded = trajectories._VarianceRecorder.__call__

    def killed(self, info):
        if info["iteration"] == 17:
            raise RuntimeError("killed")
        recorded(self, info)

    monkeypatch.setattr(trajectories._VarianceRecorder, "__call__", killed)
    with pytest.raises(RuntimeError):
        robustness.run_robustness(tmp_path / "split", preset=wide, **options)
    assert (tmp_path / "split" / "checkpoints" / "astronaut_s0.pt").is_file()
    monkeypatch.setattr(trajectories._VarianceRecorder, "__call__", recorded)
    split = robustness.robustness_rows(
        robustness.run_robustness(tmp_path / "split", preset=wide, **options))
    columns = ["lambda", "peak_psnr", "peak_iteration", "final_psnr"]
    pd.testing.assert_frame_equal(split[columns].sort_values("lambda", ignore_index=True),
                                  whole[columns].sort_values("lambda", ignore_index=True))
    robustness.run_robustness(tmp_path / "quick", preset=QUICK.with_(channels=4, image_size=40),
                              **options)
    assert not (tmp_path / "quick" / "checkpoints").exists()
