"""Tests for dipspec.spectral: FBC (SPEC §5), grey conversion and radial spectra."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import CASES, DEVICES, grey_np, nchw
from skimage import data, filters, transform

from dipspec.measure.fbc import _band_weights, _fbc
from dipspec.spectral import FrequencyBandCorrespondence, fbc, radial_profile, to_grey


def _fbc_numpy(out: np.ndarray, ref: np.ndarray, bands: int = 5) -> np.ndarray:
    """SPEC §5 written out literally with NumPy (full, shifted spectrum and boolean masks)."""
    out, ref = grey_np(out), grey_np(ref)
    height, width = out.shape
    m_out = np.abs(np.fft.fftshift(np.fft.fft2(out)))
    m_ref = np.abs(np.fft.fftshift(np.fft.fft2(ref)))
    ratio = np.clip(m_out / (m_ref + 1e-8), 0, 1)
    rows, cols = np.mgrid[:height, :width]
    r = np.sqrt((cols - width // 2) ** 2 + (rows - height // 2) ** 2)
    radii = (width // 2) * np.linspace(0, 1, bands + 1)[1:]
    result, inner = [], -np.inf
    for outer in radii:
        result.append(ratio[(r > inner) & (r <= outer)].mean())
        inner = outer
    return np.array(result)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    """skimage's camera, 128 x 128, float64 in [0, 1]."""
    return transform.resize(data.camera() / 255.0, (128, 128), anti_aliasing=True)


# --- golden values ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_fbc_matches_golden(golden, case, dtype, rtol):
    inputs = golden.metric_inputs
    clean, noisy = nchw(inputs[f"{case}__clean"], dtype), nchw(inputs[f"{case}__noisy"], dtype)
    expected = torch.tensor(golden.expected["metrics"][case]["fbc_clean_vs_noisy"], dtype=dtype)
    result = fbc(clean, noisy)
    assert result.shape == (1, 5) and result.dtype == dtype
    torch.testing.assert_close(result[0], expected, rtol=rtol, atol=0)


def test_fbc_golden_as_one_batch(golden):
    inputs = golden.metric_inputs
    case = "camera_96x128"
    clean, noisy = nchw(inputs[f"{case}__clean"]), nchw(inputs[f"{case}__noisy"])
    batch = fbc(torch.cat([clean, noisy]), torch.cat([noisy, noisy]))
    expected = torch.tensor(
        golden.expected["metrics"][case]["fbc_clean_vs_noisy"], dtype=torch.float64
    )
    torch.testing.assert_close(batch[0], expected, rtol=1e-9, atol=0)
    torch.testing.assert_close(batch[1], torch.ones(5, dtype=torch.float64))


# --- independent implementation -------------------------------------------------------------


@pytest.mark.parametrize("shape", [(33, 50), (31, 31), (40, 27), (64, 64), (17, 96)])
@pytest.mark.parametrize("bands", [5, 3])
def test_fbc_matches_numpy_spec(shape, bands):
    rng = np.random.default_rng(0)
    clean = rng.random(shape)
    noisy = np.clip(clean + rng.normal(0, 0.1, shape), 0, 1)
    smooth = filters.gaussian(noisy, sigma=1.0)
    result = fbc(nchw(smooth), nchw(noisy), bands=bands)[0].numpy()
    np.testing.assert_allclose(result, _fbc_numpy(smooth, noisy, bands), rtol=1e-9)


def test_band_weights_partition_the_disc():
    # Multiplicities make each band's weights sum to 1, and the bands cover r <= floor(W/2).
    weights = _band_weights(40, 27, 5, torch.device("cpu"), torch.float64)
    torch.testing.assert_close(weights.sum(0), torch.ones(5, dtype=torch.float64))
    assert weights.shape == (40 * (27 // 2 + 1), 5)


# --- properties ------------------------------------------------------------------------------


def test_fbc_of_itself_is_one():
    y = torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fbc(y, y), torch.ones(3, 5))


@pytest.mark.parametrize("noise", [0.0, 25 / 255])
def test_fbc_falls_from_low_to_high_band_for_a_blurred_output(camera, noise):
    rng = np.random.default_rng(1)
    reference = np.clip(camera + rng.normal(0, noise, camera.shape), 0, 1)
    blurred = filters.gaussian(reference, sigma=1.0)
    bands = fbc(nchw(blurred), nchw(reference))[0]
    assert bool((bands[1:] < bands[:-1]).all()), bands
    assert bands[0] > 0.9 and bands[-1] < 0.3, bands  # low frequencies kept, high ones cut


def test_fbc_is_in_unit_interval():
    gen = torch.Generator().manual_seed(2)
    result = fbc(torch.rand(4, 1, 24, 24, generator=gen), torch.rand(4, 1, 24, 24, generator=gen))
    assert bool(((result >= 0) & (result <= 1)).all())


def test_fbc_accepts_unbatched_and_grey_equals_converted_colour():
    colour = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(3))
    ref = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(fbc(colour, ref), fbc(to_grey(colour), to_grey(ref)))


def test_fbc_batch_independence():
    gen = torch.Generator().manual_seed(5)
    out, ref = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    both = fbc(out, ref)
    torch.testing.assert_close(both[0:1], fbc(out[0:1], ref[0:1]), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(both[1:2], fbc(out[1:2], ref[1:2]), rtol=1e-6, atol=1e-7)


def test_module_equals_function():
    gen = torch.Generator().manual_seed(6)
    out, ref = torch.rand(2, 1, 32, 32, generator=gen), torch.rand(2, 1, 32, 32, generator=gen)
    meter = FrequencyBandCorrespondence(bands=4)
    assert torch.equal(meter(out, ref), fbc(out, ref, bands=4))
    assert "bands=4" in repr(meter)


def test_core_is_the_function():
    out, ref = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    weights = _band_weights(16, 16, 5, out.device, out.dtype)
    assert torch.equal(_fbc(out, ref, weights), fbc(out, ref))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_kept(device, dtype):
    out = torch.rand(2, 3, 32, 32, device=device, dtype=dtype)
    for result in (fbc(out, out), radial_profile(out), to_grey(out)):
        assert result.device.type == device and result.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    out, ref = torch.rand(2, 3, 64, 48), torch.rand(2, 3, 64, 48)
    torch.testing.assert_close(
        fbc(out.cuda(), ref.cuda()).cpu(), fbc(out, ref), rtol=1e-5, atol=1e-6
    )


# --- grey conversion -------------------------------------------------------------------------


def test_to_grey_formula_clip_and_passthrough():
    colour = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    grey = to_grey(colour.T.reshape(1, 3, 1, 4))
    torch.testing.assert_close(grey.flatten(), torch.tensor([0.2989, 0.5870, 0.1140, 0.9999]))
    over = to_grey(torch.full((1, 3, 2, 2), 2.0))
    assert torch.equal(over, torch.ones(1, 1, 2, 2))
    single = torch.rand(2, 1, 4, 4)
    assert to_grey(single) is single


# --- radial profile --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32, 32), (33, 20), (16, 25)])
def test_radial_profile_matches_numpy(shape):
    rng = np.random.default_rng(7)
    image = rng.random(shape)
    height, width = shape
    power = np.abs(np.fft.fftshift(np.fft.fft2(image))) ** 2
    rows, cols = np.mgrid[:height, :width]
    radius = np.rint(np.hypot(cols - width // 2, rows - height // 2)).astype(int)
    expected = [power[radius == k].mean() for k in range(min(shape) // 2 + 1)]
    result = radial_profile(nchw(image))[0].numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-9)


def test_radial_profile_of_a_natural_image_decays(camera):
    profile = radial_profile(nchw(camera))[0]
    assert profile.shape == (65,)
    assert profile[1:8].mean() > 100 * profile[-8:].mean()


# --- errors ----------------------------------------------------------------------------------


def test_bad_inputs_raise_helpful_errors():
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        fbc(y, torch.rand(1, 3, 16, 8))
    with pytest.raises(ValueError, match=r"C in \(1, 3\)"):
        fbc(torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="batch axis"):
        fbc(torch.rand(16, 16), torch.rand(16, 16))
    with pytest.raises(TypeError, match="floating"):
        fbc(
            torch.zeros(1, 1, 16, 16, dtype=torch.uint8),
            torch.zeros(1, 1, 16, 16, dtype=torch.uint8),
        )
    with pytest.raises(TypeError, match="torch.Tensor"):
        fbc(np.zeros((1, 1, 16, 16)), y)
    with pytest.raises(ValueError, match="bands must be a positive int"):
        fbc(y, y, bands=0)
    with pytest.raises(ValueError, match="FBC bands empty"):
        fbc(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="bands must be a positive int"):
        FrequencyBandCorrespondence(bands=2.5)
