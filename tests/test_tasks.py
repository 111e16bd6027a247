"""Tests for dipspec.tasks: degradations, operators and the Task interface (SPEC §8)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from dipspec.data import load_image
from dipspec.tasks import (
    TASKS,
    Deblock,
    Denoise,
    Enhance,
    Inpaint,
    SuperResolve,
    Task,
    add_gaussian_noise,
    bernoulli_mask,
    enhance_details,
    jpeg_compress,
    lanczos2_downsample,
    lanczos2_kernel,
    make_task,
)


@pytest.fixture(scope="module")
def grey() -> torch.Tensor:
    return load_image("camera", size=64)


@pytest.fixture(scope="module")
def colour() -> torch.Tensor:
    return load_image("astronaut", size=64)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _make(name: str, clean: torch.Tensor, seed: int = 0) -> Task:
    return make_task(name, clean=clean, seed=seed)


# --------------------------------------------------------------------------------------------
# common interface
# --------------------------------------------------------------------------------------------

DEFAULTS = {
    "denoise": (1.4, 10_000, True),
    "deblock": (1.4, 10_000, True),
    "inpaint": (1.6, 10_000, False),
    "super_resolve": (1.4, 10_000, False),
    "enhance": (1.0, 100, False),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_registry_defaults(name):
    task = make_task(name)
    assert task.name == name
    lam, iterations, backtracking = DEFAULTS[name]
    assert task.default_lipschitz_lambda == lam
    assert task.default_iterations == iterations
    assert task.backtracking is backtracking


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("image", ["grey", "colour"])
def test_degrade_shapes_ranges_and_seed(name, image, request):
    x = request.getfixturevalue(image)
    task = _make(name, x, seed=3)
    y = task.observation
    scale = 4 if name == "super_resolve" else 1
    assert y.shape == (1, x.shape[1], 64 // scale, 64 // scale)
    assert y.dtype == x.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert task.output_size == (64, 64)
    assert task.channels == x.shape[1]
    assert task.reference is task.observation
    assert torch.equal(task.clean, x)
    assert task.A(torch.rand(1, x.shape[1], 64, 64)).shape == y.shape
    # same seed, same numbers
    assert torch.equal(_make(name, x, seed=3).observation, y)


@pytest.mark.parametrize("name", ["denoise", "inpaint"])
def test_random_tasks_change_with_seed(name, grey):
    assert not torch.equal(_make(name, grey, seed=0).observation, _make(name, grey, 1).observation)


def test_accepts_chw(grey):
    task = Denoise(clean=grey[0])
    assert task.observation.shape == grey.shape


def test_degrade_with_generator_matches_constructor(grey):
    task = Denoise(clean=grey, seed=5)
    again = task.degrade(grey, torch.Generator().manual_seed(5))
    assert torch.equal(again, task.observation)


def test_operator_config_without_images():
    task = Denoise()
    with pytest.raises(ValueError, match=r"clean=\.\.\. or observation=\.\.\."):
        _ = task.observation
    assert task.clean is None
    y = task.degrade(torch.full((1, 1, 8, 8), 0.5), torch.Generator().manual_seed(0))
    assert y.shape == (1, 1, 8, 8)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_observation_only(name):
    y = torch.rand(1, 3, 16, 16)
    kwargs = {"mask": torch.ones(16, 16)} if name == "inpaint" else {}
    task = make_task(name, observation=y, **kwargs)
    assert task.clean is None
    assert task.observation is not None and torch.equal(task.observation, y)
    scale = 4 if name == "super_resolve" else 1
    assert task.output_size == (16 * scale, 16 * scale)
    f = torch.rand(1, 3, *task.output_size)
    assert task.A(f).shape == y.shape
    assert task.finalize(f).shape == f.shape


def test_observation_and_clean_must_match(grey):
    with pytest.raises(ValueError, match="does not match observation"):
        Denoise(clean=grey, observation=grey[..., :32, :32])
    task = SuperResolve(4, clean=grey, observation=torch.rand(1, 1, 16, 16))
    assert task.clean is not None


def test_to_moves_and_casts(grey):
    task = Inpaint(clean=grey).to("cpu", torch.float64)
    assert task.observation.dtype == torch.float64
    assert task.clean.dtype == torch.float64
    assert task.mask.dtype == torch.float64
    sr = SuperResolve(2, clean=grey).to(dtype=torch.float64)
    assert sr.A(sr.clean).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_numbers_on_cuda(grey):
    cpu = Denoise(clean=grey, seed=2).observation
    gpu = Denoise(clean=grey.cuda(), seed=2).observation
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Denoise(clean=torch.full((1, 1, 8, 8), 2.0))
    with pytest.raises(ValueError, match="C in"):
        Denoise(clean=torch.rand(1, 2, 8, 8))
    with pytest.raises(TypeError, match="clean="):
        Denoise(torch.rand(1, 1, 8, 8))


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (NAN, "clean contains 1 NaN"),
        (INF, "clean contains 1 inf"),
        (-INF, "clean contains 1 inf"),
        (200.0, r"looks like 0-255 values; divide by 255"),
        (40000.0, r"looks like 16-bit 0-65535 values; divide by 65535"),
        (-0.5, r"negative values.*\(x \+ 1\) / 2"),
        (-3.0, r"\[0, 1\].*rescale"),
    ],
)
def test_bad_pixel_values_are_rejected(value, match):
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = value
    with pytest.raises(ValueError, match=match):
        Denoise(clean=x)
    for make in (Deblock, Enhance, lambda **kw: SuperResolve(2, **kw)):
        with pytest.raises(ValueError, match=match.replace("clean", "observation")):
            make(observation=x)
    with pytest.raises(ValueError, match=match.replace("clean", "x")):
        Denoise().degrade(x)


def test_pure_degradations_reject_bad_pixels():
    x = torch.rand(1, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        jpeg_compress(x)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        add_gaussian_noise(x)
    with pytest.raises(ValueError, match="clean is empty"):
        Denoise(clean=torch.rand(1, 1, 0, 8))


def test_rounding_outside_unit_range_is_clamped():
    x = torch.full((1, 1, 4, 4), 0.5)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 1.0005, -0.0005
    task = Enhance(clean=x)
    assert float(task.clean.max()) == 1.0 and float(task.clean.min()) == 0.0
    assert float(x.max()) == pytest.approx(1.0005)  # the caller's tensor is untouched
    with pytest.raises(ValueError, match=r"values above 1; clamp with x.clamp\(0, 1\)"):
        Enhance(clean=x + 0.01)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Denoise(sigma=-0.1), "sigma"),
        (lambda: Denoise(sigma=float("nan")), "finite noise std"),
        (lambda: Denoise(sigma=float("inf")), "finite noise std"),
        (lambda: Denoise(sigma=25), r"0-255 scale: pass sigma=25/255"),
        (lambda: add_gaussian_noise(torch.rand(1, 1, 4, 4), 25), r"pass sigma=25/255"),
        (lambda: Deblock(quality=0), "quality"),
        (lambda: Deblock(quality=96), "quality"),
        (lambda: Deblock(quality=10.5), "quality"),
        (lambda: Inpaint(keep=0.0), "keep"),
        (lambda: Inpaint(keep=1.5), "keep"),
        (lambda: SuperResolve(factor=1), "factor"),
        (lambda: SuperResolve(factor=2.5), "factor"),
    ],
)
def test_bad_parameters(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_unknown_task_lists_names():
    with pytest.raises(ValueError, match="super_resolve"):
        make_task("deblur")
    assert isinstance(make_task("denoising"), Denoise)


# --------------------------------------------------------------------------------------------
# denoising
# --------------------------------------------------------------------------------------------


def test_denoise_noise_std():
    x = torch.full((1, 1, 128, 128), 0.5)
    sigma = 25 / 255
    y = Denoise(sigma, clean=x, seed=0).observation
    noise = y - x
    assert abs(float(noise.std()) - sigma) < 0.03 * sigma
    assert abs(float(noise.mean())) < 0.01
    assert torch.equal(Denoise(0.0, clean=x).observation, x)


# --------------------------------------------------------------------------------------------
# deblocking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["grey", "colour"])
def test_deblock_quantised_and_different(image, request):
    x = request.getfixturevalue(image)
    y = Deblock(10, clean=x).observation
    assert not torch.allclose(y, x, atol=1 / 255)
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-4)
    assert torch.equal(y, jpeg_compress(x, 10))  # deterministic


def test_deblock_quality_monotone(colour):
    psnrs = [_psnr(Deblock(q, clean=colour).observation, colour) for q in (10, 30, 90)]
    assert psnrs[0] < psnrs[1] < psnrs[2]


# --------------------------------------------------------------------------------------------
# inpainting
# --------------------------------------------------------------------------------------------


def test_inpaint_operator_and_keep_fraction():
    x = torch.rand(1, 3, 128, 128) * 0.9 + 0.1
    task = Inpaint(keep=0.3, clean=x, seed=0)
    y = task.observation
    assert torch.equal(task.A(y), y)
    assert task.mask.shape == (1, 1, 128, 128)
    assert set(task.mask.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(task.mask.mean()) - 0.3) < 0.02
    assert torch.equal(y, x * task.mask)
    m = bernoulli_mask(128, 128, 0.5, torch.Generator().manual_seed(1))
    assert abs(float(m.mean()) - 0.5) < 0.02


@pytest.mark.parametrize(
    "mask",
    [
        np.ones((16, 16), dtype=bool),
        np.ones((1, 16, 16), dtype=np.int64),
        torch.ones(1, 1, 16, 16),
        torch.ones(2, 1, 16, 16, dtype=torch.int32),
    ],
)
def test_inpaint_mask_formats(mask):
    task = Inpaint(mask, clean=torch.rand(2, 1, 16, 16))
    assert task.mask.ndim == 4 and task.mask.is_floating_point()
    assert torch.equal(task.observation, task.clean)


def test_inpaint_mask_errors(grey):
    with pytest.raises(ValueError, match=r"\(1, 1, 32, 32\).*\(1, 1, 64, 64\)"):
        Inpaint(torch.ones(1, 1, 32, 32), clean=grey)
    with pytest.raises(ValueError, match="mask=..."):
        Inpaint(observation=grey)
    with pytest.raises(ValueError, match="only 0"):
        Inpaint(torch.full((64, 64), 0.5), clean=grey)
    holes = torch.ones(64, 64)
    holes[3, 4], holes[5, 6] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="mask contains 2 NaN or inf"):
        Inpaint(holes, clean=grey)
    with pytest.raises(ValueError, match="mask contains 64 NaN or inf"):
        Inpaint(np.where(np.eye(64) > 0, np.nan, 1.0), clean=grey)


def test_inpaint_operator_config_draws_mask_once():
    task = Inpaint(keep=0.5)
    with pytest.raises(ValueError, match="no mask yet"):
        task.A(torch.rand(1, 1, 8, 8))
    x = torch.rand(1, 1, 8, 8)
    y = task.degrade(x, torch.Generator().manual_seed(0))
    assert torch.equal(task.A(x), y)


# --------------------------------------------------------------------------------------------
# super-resolution
# --------------------------------------------------------------------------------------------


def _ulyanov_kernel(factor: int) -> np.ndarray:
    """Independent transcription of get_kernel(factor, 'lanczos', 0.5, 4 factor + 1, support=2)."""
    support, kernel_width = 2, 4 * factor + 1
    kernel = np.zeros([kernel_width - 1, kernel_width - 1])
    center = (kernel_width + 1) / 2.0
    for i in range(1, kernel.shape[0] + 1):
        for j in range(1, kernel.shape[1] + 1):
            di = abs(i + 0.5 - center) / factor
            dj = abs(j + 0.5 - center) / factor
            val = 1.0
            if di != 0:
                val = val * support * np.sin(np.pi * di) * np.sin(np.pi * di / support)
                val = val / (np.pi * np.pi * di * di)
            if dj != 0:
                val = val * support * np.sin(np.pi * dj) * np.sin(np.pi * dj / support)
                val = val / (np.pi * np.pi * dj * dj)
            kernel[i - 1][j - 1] = val
    return kernel / kernel.sum()


def _ulyanov_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Replication pad (size - factor) / 2, then a strided correlation (even factors)."""
    kernel = _ulyanov_kernel(factor)
    pad = (kernel.shape[0] - factor) // 2
    padded = np.pad(image, pad, mode="edge")
    k = kernel.shape[0]
    rows = (padded.shape[0] - k) // factor + 1
    cols = (padded.shape[1] - k) // factor + 1
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            window = padded[r * factor : r * factor + k, c * factor : c * factor + k]
            out[r, c] = (window * kernel).sum()
    return out


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_lanczos_kernel_matches_reference(factor):
    kernel = lanczos2_kernel(factor)
    assert kernel.shape == (4 * factor, 4 * factor)
    assert abs(float(kernel.sum()) - 1) < 1e-12
    np.testing.assert_allclose(kernel.numpy(), _ulyanov_kernel(factor), rtol=0, atol=1e-14)


@pytest.mark.parametrize("factor", [2, 4])
def test_downsampler_matches_numpy(factor):
    x = torch.rand(1, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = lanczos2_downsample(x, factor)[0, 0].numpy()
    np.testing.assert_allclose(ours, _ulyanov_downsample(x[0, 0].numpy(), factor), atol=1e-12)


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_super_resolve_shapes_and_constant(factor):
    size = 8 * factor
    task = SuperResolve(factor, clean=torch.full((1, 3, size, size), 0.3))
    assert task.observation.shape == (1, 3, size // factor, size // factor)
    assert task.output_size == (size, size)
    assert torch.allclose(task.observation, torch.full_like(task.observation, 0.3), atol=1e-6)


def test_super_resolve_crops_with_warning():
    x = torch.rand(1, 1, 34, 37)
    with pytest.warns(UserWarning, match="not a multiple of factor=4") as record:
        task = SuperResolve(4, clean=x)
    assert record[0].filename == __file__
    assert task.clean.shape == (1, 1, 32, 36)
    assert task.observation.shape == (1, 1, 8, 9)
    assert torch.equal(task.clean, x[..., 1:33, 0:36])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SuperResolve(4, clean=torch.rand(1, 1, 32, 32))


# --------------------------------------------------------------------------------------------
# detail enhancement
# --------------------------------------------------------------------------------------------


def test_enhance_finalize(colour):
    task = Enhance(clean=colour)
    assert torch.equal(task.observation, colour)
    assert torch.equal(task.A(colour), colour)
    f = torch.rand(colour.shape, generator=torch.Generator().manual_seed(0))
    expected = torch.clamp(colour + torch.clamp(colour - f, 0, 1), 0, 1)
    assert torch.equal(task.finalize(f), expected)
    assert torch.equal(enhance_details(colour, f), expected)
    # only the positive part of the detail is added: a brighter fit changes nothing
    assert torch.equal(task.finalize(torch.ones_like(colour)), colour)
