"""The notebooks' orchestration (dipspec.experiments): configuration, sweeps, findings, tables.

Findings are tested on synthetic histories whose answer is known (a curve that peaks and decays,
one that holds), and the sweeps on tiny seeded fits (40 px, 8 channels, a few dozen iterations).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dipspec import data, experiments, tasks
from dipspec.experiments import chakrabarty as cm
from dipspec.experiments import fallback
from dipspec.fitting import FitResult
from dipspec.presets import PAPER, QUICK


def tiny_setup(figure: str = "lipschitz_control", iterations: int = 40, **changes):
    return experiments.configure(figure, "quick", image_size=40, channels=8,
                                 iterations=iterations, device="cpu", **changes)


def tiny_task(seed: int = 0) -> tasks.Denoise:
    return tasks.Denoise(clean=data.load_image("camera", size=40), seed=seed)


def synthetic(psnr, fbc=None, ratio=None, iterations=None) -> FitResult:
    """A FitResult holding only a history (the columns that findings read)."""
    psnr = np.asarray(psnr, dtype=float)
    steps = np.arange(len(psnr)) if iterations is None else np.asarray(iterations)
    frame = pd.DataFrame({"iteration": steps, "loss": 0.0, "psnr": psnr})
    if fbc is not None:
        for k in range(5):
            frame[f"fbc_{k + 1}"] = np.asarray(fbc)[:, k]
    if ratio is not None:
        frame["ratio"] = np.asarray(ratio, dtype=float)
    clean = torch.zeros(1, 1, 8, 8)
    return FitResult(output=clean, best=clean, history=frame, stop_iteration=None,
                     task=tasks.Denoise(observation=clean, clean=clean), model=torch.nn.Identity())


def decaying_dip(length: int = 1000, peak_at: int = 200) -> FitResult:
    """Plain-DIP-like: PSNR rises to 30 dB at ``peak_at`` then falls to ~25; bands rise in order."""
    t = np.arange(length, dtype=float)
    fall = 30 - 5 * (t - peak_at) / (length - peak_at)
    psnr = np.where(t <= peak_at, 20 + 10 * t / peak_at, fall)
    speeds = np.array([50.0, 150.0, 400.0, 900.0, 2000.0])
    fbc = 1 - np.exp(-t[:, None] / speeds[None, :])
    return synthetic(psnr, fbc=fbc)


def holding(length: int = 1000) -> FitResult:
    t = np.arange(length, dtype=float)
    return synthetic(30 - 10 * np.exp(-t / 30), fbc=np.full((length, 5), 0.5),
                     ratio=np.full(length, 4.0))


# --------------------------------------------------------------------------------------------
# configure
# --------------------------------------------------------------------------------------------


def test_configure_quick_defaults_come_from_preset_and_figure():
    setup = experiments.configure("lipschitz_control", "quick", device="cpu")
    assert setup.preset is QUICK or setup.preset == QUICK
    assert setup.image_size == 64 and setup.preset.channels == 32
    assert setup.lambdas == QUICK.lipschitz_lambdas
    assert setup.iterations == experiments.FIGURES["lipschitz_control"]["quick"]["iterations"]
    assert setup.images == ("Peppers",)
    assert setup.lipschitz_lambda == QUICK.lipschitz_lambda


def test_configure_paper_uses_paper_images_and_lambdas():
    setup = experiments.configure("fbc_noise", "paper", device="cpu")
    assert setup.images == ("Peppers", "F16", "Lena")
    assert setup.iterations == 5000 and setup.lambdas == PAPER.lipschitz_lambdas
    assert setup.image_size is None


def test_configure_overrides_win():
    setup = experiments.configure("gaussian_control", "quick", images=["F16"], image_size=96,
                                  channels=48, iterations=123, lambdas=[1, 2, 3],
                                  sigmas=[0.2], metrics_every=7, seed=3, device="cpu")
    assert (setup.images, setup.image_size, setup.preset.channels) == (("F16",), 96, 48)
    assert (setup.iterations, setup.lambdas, setup.sigmas) == (123, (1.0, 2.0, 3.0), (0.2,))
    assert (setup.metrics_every, setup.seed) == (7, 3)
    assert setup.preset.name == "quick"


def test_configure_rejects_unknown_figure():
    with pytest.raises(ValueError, match="unknown figure"):
        experiments.configure("nope", "quick", device="cpu")


def test_smoothing_window_scales_with_iterations():
    assert tiny_setup(iterations=40).smooth == 10
    assert tiny_setup(iterations=5000).smooth == 50


def test_provenance_names_the_scale():
    setup = tiny_setup()
    info = setup.provenance([decaying_dip()], note="x")
    assert info["preset"] == "quick" and info["channels"] == 8 and info["note"] == "x"
    assert info["figure"] == "lipschitz_control" and "commit" in info
    batch = [decaying_dip(500), decaying_dip(800)]
    for result in batch:
        result.wall_time = 12.0  # members of one fit_many batch share its wall time
    nested = setup.provenance({"F16": {"ours": batch[0], "plain": batch[1]}})
    assert nested["iterations"] == 800 and nested["wall_time_s"] == 12.0


# --------------------------------------------------------------------------------------------
# images and tasks
# --------------------------------------------------------------------------------------------


def test_load_embedded_image():
    assert experiments.load("camera", size=32).shape == (1, 1, 32, 32)


def test_load_unknown_name_says_what_exists():
    with pytest.raises(ValueError, match="unknown image 'nope'"):
        experiments.load("nope")


def test_degraded_view_upsamples_super_resolution():
    task = tasks.SuperResolve(4, clean=data.load_image("camera", size=32))
    view = experiments.degraded_view(task)
    assert view.shape == (1, 1, 32, 32) and float(view.min()) >= 0 and float(view.max()) <= 1
    denoise = tiny_task()
    assert experiments.degraded_view(denoise) is denoise.observation


@pytest.fixture
def no_paper_data(monkeypatch, tmp_path):
    """A machine without the paper's images (an empty mirror and cache, downloads disabled) and
    a fresh record of fallbacks."""
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", str(tmp_path))
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIPSPEC_OFFLINE", "1")
    monkeypatch.setattr(fallback, "_used", {})


def test_application_tasks_cover_the_paper(no_paper_data, capsys):
    setup = tiny_setup("applications")
    apps = experiments.application_tasks(setup)  # the quick preset's stand-ins
    assert [task.name for task in apps.values()] == [
        "denoise", "deblock", "inpaint", "inpaint", "super_resolve", "enhance"]
    for task in apps.values():
        assert task.output_size == (40, 40)
    region = apps["inpainting (region)"].mask
    assert 0.5 < float(region.mean()) < 1.0  # a resized region mask, not Bernoulli(1/2)
    assert apps["JPEG deblocking"].channels == 1 and apps["denoising"].channels == 3
    assert set(fallback.fallbacks_used()) == {
        "denoising/image_F16_512rgb.png", "deblocking/classic5/barbara.bmp",
        "inpainting/Dataset_Bernoulli/img/barbara.png", "inpainting/vase.png",
        "inpainting/vase_mask.png", "denoising/image_House256rgb.png", "enhancement/tulips.bmp"}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all("unavailable" in line for line in lines)


def test_quick_preset_falls_back_with_one_line_and_provenance(no_paper_data, capsys):
    setup = tiny_setup("quickstart")
    peppers = experiments.load("Peppers", 40, preset=setup.preset)
    again = experiments.denoising_task("Peppers", setup).clean  # same stand-in, no second line
    assert torch.equal(peppers, data.load_image("coffee", size=40)) and torch.equal(again, peppers)
    out = capsys.readouterr().out
    assert out == ("paper image Peppers unavailable (not in $DIPSPEC_DATA_MIRROR, downloads "
                   "disabled by $DIPSPEC_OFFLINE): using the embedded 'coffee' instead "
                   "(quick preset only; recorded in the figure's provenance)\n")
    info = setup.provenance()
    assert info["image_fallbacks"] == {"denoising/image_Peppers512rgb.png": "coffee"}
    grey = experiments.load("inpainting/Dataset_Bernoulli/img/barbara.png", gray=True,
                            preset="quick")
    assert grey.shape == (1, 1, 512, 512)  # the paper image's own size: its crops still fit


def test_paper_preset_never_falls_back(no_paper_data):
    with pytest.raises(FileNotFoundError, match="DIPSPEC_OFFLINE"):
        experiments.load("Peppers", 40, preset="paper")
    with pytest.raises(FileNotFoundError):
        experiments.load("Peppers", 40)  # no preset: no fallback either
    with pytest.raises(FileNotFoundError):
        cm.table_images(4, ["House"])
    assert fallback.fallbacks_used() == {}
    assert "image_fallbacks" not in tiny_setup().provenance()


def test_a_reachable_paper_image_is_used_not_replaced(fake_paper_data, monkeypatch):
    monkeypatch.setattr(fallback, "_used", {})
    house = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    fake_paper_data.add("denoising/image_House256rgb.png", house)
    images = cm.table_images(4, ["House"], preset="quick")
    assert list(images) == ["image_House256rgb"] and images["image_House256rgb"].shape[-2:] == (
        64, 64)
    assert fallback.fallbacks_used() == {}


def test_application_lambda_follows_the_scale_and_task():
    setup = tiny_setup()
    assert experiments.application_lambda(tiny_task(), setup) == QUICK.lipschitz_lambda
    assert experiments.application_lambda(tasks.Inpaint(keep=0.5), setup) == 1.6
    assert experiments.application_lambda(tasks.Enhance(), setup) == 1.0


# --------------------------------------------------------------------------------------------
# sweeps (tiny fits)
# --------------------------------------------------------------------------------------------


def test_sweep_lambda_fits_plain_then_each_lambda():
    setup = tiny_setup(iterations=12)
    results = experiments.sweep_lambda(tiny_task(), setup, lambdas=(0.5, 3.0), progress=False)
    assert list(results) == ["λ = 0.5", "λ = 3", "plain DIP"]
    assert [r.model.lipschitz_lambda for r in results.values()] == [0.5, 3.0, None]
    assert all(len(r.history) == 12 for r in results.values())
    assert results["λ = 0.5"].history["fbc_1"].notna().any()


def test_fit_together_batches_each_size_apart():
    setup = tiny_setup(iterations=5)
    small = tasks.Denoise(clean=data.load_image("camera", size=40))
    large = tasks.Denoise(clean=data.load_image("camera", size=48))
    models = [experiments.make_model("decoder", setup, 1, lipschitz_lambda=lam)
              for lam in (None, 1.0, 2.0)]
    results = experiments.fit_together([small, large, small], models, setup, progress=False)
    assert [r.output.shape[-1] for r in results] == [40, 48, 40]
    assert [r.model.lipschitz_lambda for r in results] == [None, 1.0, 2.0]


def test_sweep_sigma_uses_gaussian_upsampling():
    setup = tiny_setup(iterations=6)
    results = experiments.sweep_sigma(tiny_task(), setup, sigmas=(0.0, 1.0), progress=False)
    assert list(results) == ["σ = 0", "σ = 1"]
    assert results["σ = 1"].model.upsample == "gaussian"
    assert results["σ = 1"].model.gaussian_sigma == (1.0,) * 5


def test_compare_architectures_fits_each_network():
    setup = tiny_setup(iterations=4)
    results = experiments.compare_architectures(tiny_task(), setup, progress=False)
    assert list(results) == list(experiments.ARCHITECTURES)
    kinds = [type(r.model).__name__ for r in results.values()]
    assert kinds == ["SkipNet", "Decoder", "ConvNet"]


def test_same_seed_same_numbers():
    setup = tiny_setup(iterations=8)
    first = experiments.sweep_lambda(tiny_task(), setup, lambdas=(1.0,), plain=False,
                                     progress=False)
    second = experiments.sweep_lambda(tiny_task(), setup, lambdas=(1.0,), plain=False,
                                      progress=False)
    pd.testing.assert_frame_equal(first["λ = 1"].history, second["λ = 1"].history)


def test_restore_all_caps_iterations_per_task():
    setup = tiny_setup("applications", iterations=50)
    setup = experiments.Setup(**{**setup.__dict__, "extra": {"task_iterations": 7}})
    clean = data.load_image("camera", size=40)
    results = experiments.restore_all({"denoising": tasks.Denoise(clean=clean),
                                       "enhance": tasks.Enhance(clean=clean)}, setup,
                                      progress=False)
    assert len(results["denoising"].history) == 7
    assert results["enhance"].model.lipschitz_lambda == 1.0
    table = experiments.psnr_table(results)
    assert list(table.index) == ["denoising"]  # enhancement has no clean reference
    assert set(table.columns) == {"degraded", "restored", "best (oracle)", "iterations"}


# --------------------------------------------------------------------------------------------
# reading results
# --------------------------------------------------------------------------------------------


def test_peak_is_judged_on_the_smoothed_curve():
    psnr = np.full(200, 20.0)
    psnr[50] = 40.0  # one spike
    psnr[120:140] = 25.0  # a real, wider bump
    result = synthetic(psnr)
    assert experiments.peak(result, 1)[0] == 50
    assert 120 <= experiments.peak(result, 15)[0] < 140


def test_rise_iteration_ignores_a_late_creep():
    t = np.arange(1000, dtype=float)
    creeping = synthetic(25 - 10 * np.exp(-t / 100) + 0.0005 * t)  # peak at the very end
    assert experiments.peak(creeping, 10)[0] > 900
    assert 150 < experiments.rise_iteration(creeping, 10) < 300


def test_bands_at_reads_the_nearest_measured_iteration():
    fbc = np.linspace(0, 1, 11)[:, None].repeat(5, axis=1)
    result = synthetic(np.zeros(11), fbc=fbc, iterations=np.arange(0, 110, 10))
    assert float(experiments.bands_at(result, 52)["fbc_1"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="metrics_every"):
        experiments.bands_at(synthetic(np.zeros(3)), 1)


def test_summary_reports_peak_drop_and_bands():
    table = experiments.summary({"dip": decaying_dip()}, smooth=10)
    row = table.loc["dip"]
    assert 190 <= row["peak iteration"] <= 210
    assert row["drop (dB)"] == pytest.approx(5.0, abs=0.2)
    assert row["fbc_1 @peak"] > row["fbc_5 @peak"]


def test_stop_at_and_stop_table():
    result = holding(600)
    assert experiments.stop_at(result, window=100, eps=0.01) == 201
    assert experiments.stop_at(result, window=50, eps=0.01) == 101
    assert experiments.stop_iterations({"a": result}, window=50) == {"a": 101}
    table = experiments.stop_table({"flat": result}, smooth=10)
    row = table.loc["flat"]
    assert row["stop iteration"] == 201 and row["iterations saved"] == 398
    assert row["PSNR at stop"] == pytest.approx(30 - 10 * math.exp(-201 / 30), abs=0.01)
    assert row["PSNR lost (dB)"] == pytest.approx(row["PSNR at end"] - row["PSNR at stop"],
                                                  abs=0.01)


def test_stop_table_when_the_rule_never_fires():
    steady_decay = synthetic(np.full(500, 20.0), ratio=10 - 0.01 * np.arange(500))
    row = experiments.stop_table({"never": steady_decay}, smooth=10).loc["never"]
    assert pd.isna(row["stop iteration"]) and row["iterations saved"] == 0


# --------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------


def test_findings_spectral_bias_on_a_decaying_curve():
    found = experiments.findings_spectral_bias({"a": decaying_dip()}, smooth=10)
    assert found["plain DIP peaks before the last iteration and ends > 1 dB below its peak"]
    assert found["bands at the peak fall from low to high frequency"]
    assert all(isinstance(v, bool) for v in found.values())


def test_findings_spectral_bias_fail_on_a_holding_curve():
    found = experiments.findings_spectral_bias({"a": holding()}, smooth=10)
    assert not found["plain DIP peaks before the last iteration and ends > 1 dB below its peak"]


def test_findings_lipschitz_regimes():
    t = np.arange(1000, dtype=float)
    bands = lambda top: np.column_stack([np.full(1000, 0.9)] * 4 + [np.full(1000, top)])  # noqa: E731
    results = {
        "plain DIP": synthetic(decaying_dip().history["psnr"], fbc=bands(0.7)),
        "λ = 1": synthetic(22 + 3 * (1 - np.exp(-t / 300)), fbc=bands(0.2)),
        "λ = 2": synthetic(30 - 10 * np.exp(-t / 100), fbc=bands(0.4)),
        "λ = 3": synthetic(decaying_dip().history["psnr"], fbc=bands(0.6)),
    }
    found = experiments.findings_lipschitz(results, (1, 2, 3), smooth=10)
    assert all(found.values()), found
    swapped = dict(results, **{"λ = 2": results["λ = 3"]})
    assert not all(experiments.findings_lipschitz(swapped, (1, 2, 3), smooth=10).values())


def test_findings_stopping_and_report(capsys):
    found = experiments.findings_stopping({"flat": holding(600)}, smooth=10)
    assert found == {"auto-stop fires before the last iteration": True,
                     "auto-stop PSNR within 0.5 dB of the final PSNR": True}
    experiments.report(found)
    assert capsys.readouterr().out.splitlines() == [
        "auto-stop fires before the last iteration: True",
        "auto-stop PSNR within 0.5 dB of the final PSNR: True"]
