"""Tests for dipspec.metrics: PSNR and SSIM against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import DEVICES, nchw
from skimage import data, transform
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dipspec.metrics import psnr, ssim


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A clean colour image (64 x 80 x 3, non-square) and a noisy copy, float64 in [0, 1]."""
    clean = transform.resize(data.astronaut() / 255.0, (64, 80), anti_aliasing=True)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1)
    return clean, noisy


def _skimage_ssim(x: np.ndarray, ref: np.ndarray) -> float:
    return structural_similarity(
        x,
        ref,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1 if x.ndim == 3 else None,
    )


# Tolerances: float64 agrees with skimage to ~5e-16 relative (measured), so 1e-12; float32
# inputs lose ~1e-7 to rounding and to E[x^2] - E[x]^2 cancellation (measured 9e-8), so 1e-5.
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("colour", [True, False])
def test_ssim_matches_skimage(pair, dtype, rtol, colour):
    clean, noisy = pair if colour else (pair[0][..., 1], pair[1][..., 1])
    result = ssim(nchw(noisy, dtype), nchw(clean, dtype))
    assert result.shape == (1,) and result.dtype == dtype
    np.testing.assert_allclose(result.double().numpy(), [_skimage_ssim(noisy, clean)], rtol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_psnr_matches_skimage(pair, dtype, rtol):
    clean, noisy = pair
    result = psnr(nchw(noisy, dtype), nchw(clean, dtype))
    assert result.shape == (1,) and result.dtype == dtype
    expected = peak_signal_noise_ratio(clean, noisy, data_range=1)
    np.testing.assert_allclose(result.double().numpy(), [expected], rtol=rtol)


def test_psnr_data_range_and_identity():
    ref = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(
        psnr(ref + 25.5, ref, data_range=255.0), torch.full((2,), 20.0, dtype=torch.float64)
    )
    assert bool(torch.isinf(psnr(ref, ref)).all())


def test_ssim_identity_and_data_range(pair):
    clean, noisy = nchw(pair[0]), nchw(pair[1])
    torch.testing.assert_close(ssim(clean, clean), torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(ssim(255 * noisy, 255 * clean, data_range=255.0), ssim(noisy, clean))


def test_batch_independence(pair):
    clean, noisy = nchw(pair[0]), nchw(pair[1])
    batch_x, batch_ref = torch.cat([noisy, clean]), torch.cat([clean, clean])
    for fn in (psnr, ssim):
        both = fn(batch_x, batch_ref)
        assert both.shape == (2,)
        assert torch.equal(both[0:1], fn(noisy, clean)) and torch.equal(both[1:2], fn(clean, clean))


def test_unbatched_input(pair):
    clean, noisy = nchw(pair[0])[0], nchw(pair[1])[0]
    assert psnr(noisy, clean).shape == (1,) and ssim(noisy, clean).shape == (1,)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_kept(device, dtype):
    x = torch.rand(2, 3, 16, 16, device=device, dtype=dtype)
    ref = torch.rand(2, 3, 16, 16, device=device, dtype=dtype)
    for fn in (psnr, ssim):
        result = fn(x, ref)
        assert result.shape == (2,) and result.device.type == device and result.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(pair):
    clean, noisy = nchw(pair[0]), nchw(pair[1])
    for fn in (psnr, ssim):
        torch.testing.assert_close(fn(noisy.cuda(), clean.cuda()).cpu(), fn(noisy, clean))


def test_bad_inputs_raise_helpful_errors():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.rand(1, 3, 16, 12))
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="H and W >= 11"):
        ssim(torch.rand(1, 1, 10, 32), torch.rand(1, 1, 10, 32))
    with pytest.raises(ValueError, match="data_range must be > 0"):
        psnr(x, x, data_range=0)
    with pytest.raises(TypeError, match="floating"):
        ssim(
            torch.zeros(1, 1, 16, 16, dtype=torch.uint8),
            torch.zeros(1, 1, 16, 16, dtype=torch.uint8),
        )
    with pytest.raises(ValueError, match=r"C in \(1, 3\)"):
        psnr(torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))
