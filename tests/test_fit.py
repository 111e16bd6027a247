"""The fit loop: shapes, padding, determinism, options, and the small science (SPEC §1, §7)."""

import math

import pytest
import torch

import dipspec
from dipspec import fit
from dipspec.models import ConvNet, Decoder, SkipNet
from dipspec.tasks import Denoise, Inpaint, SuperResolve


def _small(out_channels=1, lam=None, **kw):
    return Decoder(out_channels=out_channels, channels=8, stages=2, lipschitz_lambda=lam, **kw)


@pytest.fixture(scope="module")
def camera32():
    return dipspec.data.load_image("camera", size=40)


@pytest.mark.parametrize("shape", [(1, 1, 17, 23), (1, 3, 40, 33), (1, 1, 5, 7)])
def test_output_shape_equals_image_for_odd_sizes(shape):
    clean = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    model = Decoder(out_channels=shape[1], channels=8, stages=5)
    result = fit(Denoise(clean=clean), model=model, iterations=2, device="cpu", progress=False)
    assert result.output.shape == shape
    assert result.best.shape == shape


def test_same_seed_same_numbers(camera32):
    runs = [fit(Denoise(clean=camera32, seed=1), model=_small(seed=2), iterations=15, seed=2,
                device="cpu", progress=False) for _ in range(2)]
    assert torch.equal(runs[0].output, runs[1].output)
    assert runs[0].history.equals(runs[1].history)
    other = fit(Denoise(clean=camera32, seed=1), model=_small(seed=3), iterations=15, seed=3,
                device="cpu", progress=False)
    assert not torch.equal(runs[0].output, other.output)


def test_history_columns_and_best_is_the_oracle(camera32):
    result = fit(Denoise(clean=camera32), model=_small(), iterations=30, device="cpu",
                 progress=False)
    h = result.history
    assert list(h.columns) == ["iteration", "loss", "psnr", "fbc_1", "fbc_2", "fbc_3", "fbc_4",
                               "fbc_5", "blurriness", "sharpness", "ratio"]
    assert h["iteration"].tolist() == list(range(30))
    assert h[[f"fbc_{k}" for k in range(1, 6)]].stack().between(0, 1).all()
    best_psnr = dipspec.metrics.psnr(result.best, camera32).item()
    assert best_psnr == pytest.approx(h["psnr"].max(), abs=1e-4)


def test_metrics_and_log_intervals(camera32):
    result = fit(Denoise(clean=camera32), model=_small(), iterations=20, log_every=5,
                 metrics_every=0, device="cpu", progress=False)
    assert result.history["iteration"].tolist() == [0, 5, 10, 15, 19]
    assert "fbc_1" not in result.history and result.stop_iteration is None


def test_observation_without_clean_has_no_psnr_and_works(camera32):
    noisy = Denoise(clean=camera32).observation
    result = fit(noisy[0], model=_small(), iterations=5, device="cpu", progress=False)
    assert result.best is None and result.history["psnr"].isna().all()
    assert result.output.shape == (1, 1, 40, 40)


def test_callbacks_receive_rows_and_can_stop(camera32):
    seen = []

    def callback(step):
        seen.append((step["iteration"], step["psnr"], tuple(step["output"].shape)))
        return step["iteration"] == 6

    result = fit(Denoise(clean=camera32), model=_small(), iterations=50, device="cpu",
                 progress=False, callbacks=[callback])
    assert [s[0] for s in seen] == list(range(7))
    assert result.history["iteration"].iloc[-1] == 6
    assert seen[-1][1] == pytest.approx(result.history["psnr"].iloc[-1])


def test_keep_outputs_and_ema(camera32):
    result = fit(Denoise(clean=camera32), model=_small(), iterations=12, ema=0.99,
                 keep_outputs=(0, 11), device="cpu", progress=False, reg_noise_std=1 / 30)
    assert sorted(result.snapshots) == [0, 11]
    torch.testing.assert_close(result.snapshots[11], result.output)
    assert "psnr_avg" in result.history and result.output_avg is not None


def test_kept_outputs_between_logged_rows(camera32):
    # kept iterations get a history row even when log_every skips them
    result = fit(Denoise(clean=camera32), model=_small(), iterations=12, log_every=5,
                 metrics_every=0, keep_outputs=(3,), device="cpu", progress=False)
    assert list(result.history["iteration"]) == [0, 3, 5, 10, 11]
    assert sorted(result.snapshots) == [3]
    with pytest.raises(ValueError, match=r"keep_outputs \[12\] lie outside"):
        fit(Denoise(clean=camera32), model=_small(), iterations=12, keep_outputs=(12,),
            device="cpu", progress=False)


def test_backtracking_restores_weights(camera32):
    """A sabotaged step (weights blown up) is undone at the next check (SPEC §7)."""
    model = _small()

    def sabotage(step):
        if step["iteration"] == 14:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 50)

    result = fit(Denoise(clean=camera32), model=model, iterations=40, backtrack_every=5,
                 device="cpu", progress=False, callbacks=[sabotage], backtracking=True)
    assert result.backtracks >= 1
    h = result.history.set_index("iteration")["psnr"]
    assert h.iloc[-1] > h.loc[15] + 3  # recovered


def test_super_resolution_and_inpainting_shapes():
    clean = dipspec.data.load_image("coffee", size=40)
    sr = fit(SuperResolve(factor=2, clean=clean), model=_small(3), iterations=3, device="cpu",
             progress=False)
    assert sr.output.shape == clean.shape
    inpaint = fit(Inpaint(clean=clean, keep=0.5), model=_small(3), iterations=3, device="cpu",
                  progress=False)
    assert inpaint.output.shape == clean.shape


def test_other_models_go_through_fit(camera32):
    for model in (SkipNet(in_channels=32, out_channels=1, channels=8, scales=2),
                  ConvNet(out_channels=1, channels=8, blocks=2)):
        result = fit(Denoise(clean=camera32), model=model, iterations=3, input_kind="noise",
                     device="cpu", progress=False)
        assert result.output.shape == camera32.shape


def test_default_model_uses_the_default_lambda_and_preset(camera32):
    result = fit(Denoise(clean=camera32), iterations=2, preset="quick", device="cpu",
                 progress=False)
    assert result.model.lipschitz_lambda == dipspec.presets.default_lambda("denoise", "quick")
    assert result.model.body[0][1].out_channels == dipspec.presets.QUICK.channels


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(iterations=0), ValueError, "iterations must be >= 1"),
        (dict(device="tpu"), ValueError, "unknown device"),
        (dict(preset="huge"), ValueError, "unknown preset"),
        (dict(stop_rule="paper", metrics_every=0), ValueError, "stop_rule='paper' needs"),
    ],
)
def test_fit_errors(camera32, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(Denoise(clean=camera32), model=_small(), progress=False, **kwargs)


def test_fit_rejects_non_images():
    with pytest.raises(TypeError, match="Task or an image tensor"):
        fit([1, 2, 3])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        fit(torch.rand(5, 8, 8))


def test_the_paper_rule_without_control_warns(camera32):
    with pytest.warns(UserWarning, match="without λ or σ control"):
        fit(Denoise(clean=camera32), model=_small(), iterations=3, stop_rule="paper",
            device="cpu", progress=False)


# --- small science (seeded, CPU, seconds) ------------------------------------------------------
@pytest.fixture(scope="module")
def science_runs():
    clean = dipspec.data.load_image("astronaut", size=32, gray=True)
    task = Denoise(clean=clean, seed=0)
    runs = {}
    for name, lam in (("plain", None), ("lambda1", 1.0)):
        model = Decoder(out_channels=1, channels=32, stages=5, lipschitz_lambda=lam, seed=0)
        runs[name] = fit(task, model=model, iterations=400, metrics_every=4, device="cpu",
                         progress=False)
    return task, runs


def test_plain_dip_denoises(science_runs):
    task, runs = science_runs
    noisy_psnr = dipspec.metrics.psnr(task.observation, task.clean).item()
    assert runs["plain"].peak("psnr", smooth=9)[1] > noisy_psnr + 3


def test_small_lambda_cannot_fit_the_noise(science_runs):
    _, runs = science_runs
    final = {name: r.history["loss"].iloc[-20:].mean() for name, r in runs.items()}
    assert final["lambda1"] > 1.5 * final["plain"]
    noise_var = (25 / 255) ** 2
    assert final["lambda1"] > 0.5 * noise_var  # still far from fitting the noise


def test_spectral_bias_low_band_before_high(science_runs):
    _, runs = science_runs
    plain = runs["plain"]
    assert plain.first_reach("fbc_1", 0.9) < plain.first_reach("fbc_5", 0.5)
    assert not math.isinf(plain.first_reach("fbc_1", 0.9))
