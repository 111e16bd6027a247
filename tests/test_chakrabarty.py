"""Chakrabarty & Maji experiment helpers (SPEC §9) and ``dipspec table architectures``."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dipspec import chakrabarty as cm
from dipspec.cli import main
from dipspec.experiments.chakrabarty import tables
from dipspec.tasks import Denoise


def _series(values):
    return pd.Series(values, index=range(0, 10 * len(values), 10), dtype=float)


def test_meetings_finds_the_two_meetings():
    shrink_grow_shrink = _series([1.0, 0.3, 0.1, 0.08, 0.2, 0.5, 0.6, 0.3, 0.05, 0.01])
    assert cm.meetings(shrink_grow_shrink, smooth=1) == [30, 90]
    assert cm.divergence_after_first_meeting(shrink_grow_shrink, smooth=1) == pytest.approx(7.5)


def test_meetings_ignores_wiggles_and_counts_a_monotone_fit_once():
    assert cm.meetings(_series([1.0, 0.5, 0.25, 0.12, 0.06]), smooth=1) == [40]
    assert cm.meetings(_series([1.0, 0.5, 0.6, 0.45, 0.5, 0.4]), smooth=1) == [50]
    assert cm.meetings(_series([1.0, 1.1, 1.2]), smooth=1) == []


def test_trajectory_pair_distance_shrinks_as_both_fit_the_image():
    torch.manual_seed(0)
    image = torch.rand(1, 1, 16, 16)
    distance, fits = cm.trajectory_pair(Denoise(observation=image), iterations=40, every=10,
                                        channels=8, scales=2)
    assert list(distance.index) == [0, 10, 20, 30]
    assert len(fits[0].snapshots) == 4
    assert distance.iloc[-1] < distance.iloc[0]
    same, _ = cm.trajectory_pair(Denoise(observation=image), seeds=(3, 3), iterations=10,
                                 every=5, channels=8, scales=2)
    assert same.max() == 0.0


def test_low_frequency_noise_is_low_frequency():
    low = cm.low_frequency_noise((1, 1, 64, 64), std=0.1, sigma=4.0, seed=1)
    white = cm.white_noise((1, 1, 64, 64), std=0.1, seed=1)
    assert float(low.std()) == pytest.approx(0.1, rel=1e-4)
    assert abs(float(low.mean())) < 1e-6
    assert torch.equal(low, cm.low_frequency_noise((1, 1, 64, 64), std=0.1, sigma=4.0, seed=1))
    energy = [cm.high_frequency_energy((0.5 + n).clamp(0, 1), cutoff=0.25) for n in (low, white)]
    assert energy[0] < 0.01 < 0.5 < energy[1]


def test_fitted_fractions_separate_noise_and_texture():
    clean = torch.rand(1, 1, 32, 32)
    noise = cm.low_frequency_noise(clean.shape, std=0.1, sigma=3.0)
    smooth = cm.gaussian_blur(clean, 1.5)
    n, t = cm.fitted_fractions(smooth + noise, clean, noise)
    assert n == pytest.approx(1.0, abs=0.05) and t == pytest.approx(0.0, abs=0.05)
    n, t = cm.fitted_fractions(clean, clean, noise)
    assert n == pytest.approx(0.0, abs=1e-6) and t == pytest.approx(1.0, abs=1e-6)


def test_init_spectrum_gets_steeper_with_depth_1d():
    spectra = cm.init_spectra(depths=(1, 6), input_stds=(1.0,), dims=1, size=128, channels=16,
                              samples=8)
    assert spectra.shape == (64, 2)
    torch.testing.assert_close(torch.tensor(spectra.sum().to_numpy()),
                               torch.ones(2, dtype=torch.float64))
    slopes = cm.slopes(spectra)
    assert slopes[(6, 1.0)] < slopes[(1, 1.0)]


def test_random_conv_net_is_seeded():
    a, b = cm.RandomConvNet(2, 2, 4, seed=5), cm.RandomConvNet(2, 2, 4, seed=5)
    z = torch.randn(1, 4, 8, 8)
    assert torch.equal(a(z), b(z))
    with pytest.raises(ValueError, match="dims"):
        cm.RandomConvNet(3)


def test_stride_decoder_same_depth_different_stride():
    nets = {s: cm.StrideDecoder(s, depth=6, channels=8, out_channels=1) for s in (4, 32)}
    convs = {s: sum(isinstance(m, torch.nn.Conv2d) for m in n.modules()) for s, n in nets.items()}
    ups = {s: sum(isinstance(m, torch.nn.Upsample) for m in n.modules()) for s, n in nets.items()}
    assert convs[4] == convs[32] == 7 and ups == {4: 2, 32: 5}
    assert nets[32].input_shape(64, 64) == (8, 2, 2)
    assert nets[32](torch.rand(1, 8, 2, 2)).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="power of 2"):
        cm.StrideDecoder(6)


def test_spectrum_error_of_the_target_is_zero():
    clean = torch.rand(1, 1, 32, 32)
    fits = cm.stride_fits(Denoise(observation=clean), strides=(4,), depth=3, channels=4,
                          iterations=4, every=2)
    error = cm.spectrum_error(fits[4], clean)
    assert list(error.index) == [0, 2] and error.shape[1] == 17
    fits[4].snapshots[2] = clean
    assert float(error.iloc[0].mean()) > 0 and cm.spectrum_error(fits[4], clean).iloc[1].max() == 0


def _fake_rows():
    rows = []
    for image, base in (("a", 20.0), ("b", 30.0)):
        for seed in range(3):
            for k, arch in enumerate(cm.ARCHITECTURES):
                rows.append(dict(image=image, architecture=arch, seed=seed, iterations=5,
                                 psnr=base + k + seed, best_iteration=3, noisy_psnr=20.0,
                                 wall_time_s=0.1))
    return pd.DataFrame(rows)


def test_summarise_table_has_mean_std_and_average():
    table = cm.summarise_table(_fake_rows())
    assert list(table.columns) == list(cm.ARCHITECTURES)
    assert list(table.index) == ["a", "b", "Average"]
    assert table.loc["a", "DIP"] == "21.00 ± 0.82"
    assert table.loc["Average", "ReLUNet"] == "29.00 ± 0.82"


def test_write_table_writes_three_files(tmp_path):
    paths = cm.write_table(_fake_rows(), tmp_path, {"device": "cpu", "iterations": {"DIP": 5}})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "architectures.csv", "architectures.json", "architectures.md"]
    assert "| **Average** |" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["device"] == "cpu"
    assert len(pd.read_csv(paths["csv"])) == 24


@pytest.fixture
def paper_data(fake_paper_data):
    """A mirror whose only denoising image is a 256 × 256 House made here (no paper data)."""
    rng = np.random.default_rng(0)
    fake_paper_data.add("denoising/image_House256rgb.png",
                        rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    return fake_paper_data


def test_table_command_on_one_image(paper_data, tmp_path, capsys):
    code = main(["table", "architectures", "--images", "House", "--seeds", "1",
                 "--iterations", "3", "--out", str(tmp_path), "--device", "cpu", "--quiet"])
    assert code == 0
    rows = pd.read_csv(tmp_path / "architectures.csv")
    assert list(rows["architecture"]) == list(cm.ARCHITECTURES)
    assert (rows["iterations"] == 3).all() and rows["psnr"].notna().all()
    info = json.loads((tmp_path / "architectures.json").read_text())
    assert info["images"] == {"image_House256rgb": [64, 64]} and info["seeds"] == [0]
    assert "wall_time_s" in info and "commit" in info and "device" in info
    assert "| House |" in (tmp_path / "architectures.md").read_text()

    # --update re-runs one column and keeps the others with their own provenance
    code = main(["table", "architectures", "--images", "House", "--seeds", "1",
                 "--architectures", "ReLUNet", "--iterations", "4", "--update",
                 "--out", str(tmp_path), "--device", "cpu", "--quiet"])
    assert code == 0
    updated = pd.read_csv(tmp_path / "architectures.csv")
    assert sorted(updated["architecture"]) == sorted(cm.ARCHITECTURES)
    assert dict(zip(updated["architecture"], updated["iterations"])) == {
        "DIP": 3, "DIP Linear-128": 3, "DIP Linear-2048": 3, "ReLUNet": 4}
    pd.testing.assert_frame_equal(updated[updated["architecture"] != "ReLUNet"],
                                  rows[rows["architecture"] != "ReLUNet"])
    info = json.loads((tmp_path / "architectures.json").read_text())
    assert info["iterations"]["ReLUNet"] == 4 and info["iterations"]["DIP"] == 3
    assert set(info["columns"]) == set(cm.ARCHITECTURES)
    assert info["columns"]["ReLUNet"]["wall_time_s"] != info["columns"]["DIP"]["wall_time_s"]


def test_update_table_checks_the_table_it_updates(paper_data, tmp_path, capsys):
    settings = {"device": "cpu", "factor": 4, "seeds": [0, 1, 2], "iterations": {"DIP": 5},
                "images": {"a": [8, 8], "b": [8, 8]}, "commit": "aaa", "wall_time_s": 9}
    with pytest.raises(FileNotFoundError, match="no table to update"):
        cm.update_table(_fake_rows(), tmp_path, settings)
    cm.write_table(_fake_rows(), tmp_path, {**settings, "note": "ReLUNet still rising."})
    with pytest.raises(ValueError, match="seeds"):
        cm.update_table(_fake_rows(), tmp_path, {**settings, "seeds": [0]})
    newer = _fake_rows().query("architecture == 'ReLUNet'").assign(psnr=40.0, iterations=7)
    paths = cm.update_table(newer, tmp_path, {**settings, "iterations": {"ReLUNet": 7},
                                              "commit": "bbb", "wall_time_s": 3})
    table = cm.summarise_table(pd.read_csv(paths["csv"]))
    assert table.loc["a", "ReLUNet"] == "40.00 ± 0.00" and table.loc["a", "DIP"] == "21.00 ± 0.82"
    header = paths["md"].read_text().splitlines()[0]
    assert "DIP, DIP Linear-128, DIP Linear-2048: device cpu, wall time 9 s, commit aaa" in header
    assert "ReLUNet: device cpu, wall time 3 s, commit bbb" in header
    assert "still rising" not in header  # the old note spoke of the replaced column
    # the CLI checks before it fits anything
    assert main(["table", "architectures", "--update", "--out", str(tmp_path / "none")]) == 2
    assert "no table to update" in capsys.readouterr().err


def test_table_oracle_read_every_k_iterations(paper_data, tmp_path):
    images = cm.table_images(4, ["House"])
    every = cm.architecture_table(images, seeds=[0], iterations=12, architectures=["ReLUNet"],
                                  log_every=1)
    sparse = cm.architecture_table(images, seeds=[0], iterations=12, architectures=["ReLUNet"],
                                   log_every=5)
    # the same trajectory, read at 0, 5, 10, 11: the oracle can only be lower or equal
    assert sparse["best_iteration"].iloc[0] in (0, 5, 10, 11)
    assert sparse["psnr"].iloc[0] <= every["psnr"].iloc[0] + 1e-4


@pytest.mark.parametrize("args, message", [
    (["--iterations", "DIP=5"], "no count for"),
    (["--architectures", "VGG"], "unknown architecture"),
    (["--iterations", "many"], "whole numbers"),
    (["--log-every", "0"], "--log-every must be >= 1"),
])
def test_table_command_errors(args, message, tmp_path, capsys):
    assert main(["table", "architectures", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_divergence_and_increases():
    hump = pd.Series([1.0, 0.2, 0.1, 0.3, 0.4, 0.01], index=range(0, 60, 10))
    assert cm.divergence_after_first_meeting(hump, smooth=1) == pytest.approx(4.0)
    spiky = pd.Series([1.0, 0.8, 0.5, 0.9, 0.25, 0.12, 0.06])  # one Adam spike, else shrinking
    assert cm.divergence_after_first_meeting(spiky, smooth=3) == pytest.approx(1.0)
    table = cm.divergences(pd.DataFrame({0.2: [1.0, 0.5, 0.2, 0.1], 1.0: [1.0, 0.2, 0.1, 0.4]}),
                           smooth=1)
    assert table.tolist() == [1.0, 4.0] and cm.increases(table, margin=0.2)
    assert not cm.increases(pd.Series([1.0, 1.5, 1.2]))


def test_pattern_fitted_and_meeting_images():
    target = torch.rand(1, 1, 16, 16)
    assert cm.pattern_fitted(target, target) == pytest.approx(1.0)
    assert cm.pattern_fitted(0.5 * target + 0.5 * target.mean(), target) == pytest.approx(0.5)
    distance, fits = cm.trajectory_pair(Denoise(observation=target), iterations=20, every=5,
                                        channels=4, scales=2)
    images = cm.meeting_images(fits, distance, [5], target=fits[0].task.observation)
    assert list(images)[0] == "observation" and len(images) == 7


def test_crop_and_fitting_order():
    image = torch.rand(1, 1, 20, 20)
    assert torch.equal(cm.crop(image, 2, 3, 5), image[..., 2:7, 3:8])
    with pytest.raises(ValueError, match="crop"):
        cm.crop(image, 18, 0, 5)
    clean = torch.rand(1, 1, 16, 16) * 0.5 + 0.25
    noises = {"white": cm.white_noise(clean.shape, 0.05),
              "low-frequency": cm.low_frequency_noise(clean.shape, 0.05, 3.0)}
    fits, curves = cm.noise_fits(clean, noises, iterations=6, every=2, channels=4, scales=2,
                                 metrics_every=2)
    order = cm.fitting_order(fits, curves)
    assert list(order.index) == ["white", "low-frequency"]
    assert {"noise_half", "texture_half", "noise_at_peak"} <= set(order.columns)
    assert list(curves["white"].index) == [0, 2, 4]


def test_setup_picks_the_preset_settings():
    quick = cm.setup("quick", {"size": 32}, {"size": 256})
    assert quick["size"] == 32 and quick["scale"] == "quick" and quick["device"]
    assert cm.setup("paper", {"size": 32}, {"size": 256})["size"] == 256


def test_smoothness_helpers():
    fits = cm.stride_fits(Denoise(observation=torch.rand(1, 1, 32, 32)), strides=(4, 32),
                          depth=5, channels=4, iterations=4, every=2)
    table = cm.smoothness_table(fits, fits[4].task.observation, [0, 2])
    assert list(table.columns) == [4, 32] and list(table.index) == [0, 2, "target"]
    assert isinstance(cm.smoother(table, 32, 4), bool)


def test_read_table_from_results_stem(tmp_path, monkeypatch):
    cm.write_table(_fake_rows(), tmp_path, {"device": "cpu"})
    monkeypatch.setattr(tables, "results_path",  # where read_table looks it up
                        lambda stem, suffix=".csv": tmp_path / f"{stem}{suffix}")
    rows = cm.read_table("architectures")
    assert cm.best_is(rows, "ReLUNet") and cm.gain_over_noisy(rows, "DIP") == pytest.approx(6.0)
    assert cm.table_provenance("architectures") == {"device": "cpu"}
    with pytest.raises(FileNotFoundError, match="dipspec table architectures"):
        cm.read_table(tmp_path / "missing.csv")
