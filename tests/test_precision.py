"""The speed options of the engine: bfloat16 autocast and channels-last memory order.

Speed and the 2000-step accuracy (within 0.05 dB of float32) are measured in ``benchmarks/``;
here: the options keep the fit's meaning (σ_max exact, outputs and history in float32, the
same fit up to rounding), and bad combinations are refused.
"""

import warnings
from pathlib import Path

import pytest
import torch

import dipspec
from dipspec import fit
from dipspec.fitting import api
from dipspec.layers import sigma_max
from dipspec.models import Decoder
from dipspec.tasks import Denoise


@pytest.fixture(scope="module")
def task():
    return Denoise(clean=dipspec.data.load_image("astronaut", size=48), seed=0)


def _net():
    return Decoder(out_channels=3, channels=16, stages=3, lipschitz_lambda=1.2, seed=0)


def test_sigma_max_stays_exact_under_bf16_autocast():
    weight = torch.randn(32, 16, 3, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = sigma_max(weight)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, sigma_max(weight), rtol=1e-6, atol=0)


def test_bf16_fit_keeps_float32_outputs_and_follows_the_float32_fit(task, monkeypatch):
    monkeypatch.setattr(api, "cpu_has_bf16_units", lambda: True)  # the speed warning: below
    options = dict(iterations=60, device="cpu", progress=False)
    reference = fit(task, _net(), **options)
    bf16 = fit(task, _net(), precision="bf16", **options)
    assert bf16.output.dtype == torch.float32 and bf16.history["psnr"].notna().all()
    # a short fit: bfloat16 rounding (3 significant digits) moves PSNR by tenths of a dB
    gap = (bf16.history["psnr"] - reference.history["psnr"]).abs()
    assert gap.iloc[-1] < 0.5, gap.iloc[-1]


def test_channels_last_is_the_same_fit_up_to_rounding(task):
    options = dict(iterations=10, device="cpu", progress=False, dtype=torch.float64)
    nchw = fit(task, _net(), **options)
    nhwc = fit(task, _net(), channels_last=True, **options)
    torch.testing.assert_close(nhwc.output, nchw.output, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bf16_units_warns_that_it_is_slower(task, monkeypatch, native):
    monkeypatch.setattr(api, "cpu_has_bf16_units", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(task, _net(), iterations=2, device="cpu", progress=False, precision="bf16")
    slow = [w for w in caught if "without bfloat16 units" in str(w.message)]
    assert len(slow) == (0 if native else 1)
    if slow:
        assert "precision='fp32'" in str(slow[0].message)


def test_cpu_bf16_units_are_read_from_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to compare with")
    flags = cpuinfo.read_text().split()
    assert api.cpu_has_bf16_units() == ("avx512_bf16" in flags or "amx_tile" in flags)


def test_bad_precision_is_refused(task):
    with pytest.raises(ValueError, match="precision must be one of"):
        fit(task, _net(), iterations=2, device="cpu", progress=False, precision="fp16")
    with pytest.raises(ValueError, match="dtype=torch.float32"):
        fit(task, _net(), iterations=2, device="cpu", progress=False, precision="bf16",
            dtype=torch.float64)


def test_the_preset_chooses_precision_and_layout_unless_the_call_does(task, monkeypatch):
    monkeypatch.setattr(api, "cpu_has_bf16_units", lambda: True)
    options = dict(iterations=12, device="cpu", progress=False)
    fast = dipspec.presets.QUICK.with_(precision="bf16", channels_last=True)
    by_preset = fit(task, _net(), preset=fast, **options)
    explicit = fit(task, _net(), precision="bf16", channels_last=True, **options)
    assert torch.equal(by_preset.output, explicit.output)
    overridden = fit(task, _net(), preset=fast, precision="fp32", channels_last=False, **options)
    plain = fit(task, _net(), **options)
    assert torch.equal(overridden.output, plain.output)
    assert not torch.equal(by_preset.output, plain.output)


def test_the_cli_passes_precision_and_layout_to_the_fit(tmp_path, monkeypatch):
    import json

    from dipspec.cli import main
    seen = {}
    real_fit = dipspec.fitting.fit

    def spy(*args, **kwargs):
        seen.update(precision=kwargs["precision"], channels_last=kwargs["channels_last"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(dipspec.fitting, "fit", spy)
    out = tmp_path / "run"
    code = main(["run", "denoise", "--image", "camera", "--size", "40", "--iterations", "3",
                 "--preset", "quick", "--device", "cpu", "--precision", "bf16",
                 "--channels-last", "--out", str(out), "--quiet"])
    assert code == 0 and seen == {"precision": "bf16", "channels_last": True}
    stored = json.loads((out / "run.json").read_text())["args"]
    assert stored["precision"] == "bf16" and stored["channels_last"] is True


def test_the_wide_preset_is_the_papers_decoder_at_128_px(tmp_path, capsys):
    from dipspec.cli import main
    from dipspec.presets import WIDE, resolve
    assert resolve("wide") is WIDE
    assert (WIDE.channels, WIDE.image_size, WIDE.iterations) == (128, 128, 5000)
    assert WIDE.lipschitz_lambdas == (1.0, 2.0, 3.0) and WIDE.channels_last
    code = main(["run", "denoise", "--preset", "wide", "--iterations", "2", "--device", "cpu",
                 "--out", str(tmp_path / "wide"), "--quiet"])
    assert code == 0
    assert "restoring it at 128×128 (the wide preset's size)" in capsys.readouterr().out
