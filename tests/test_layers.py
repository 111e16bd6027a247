"""Controlled layers: golden values, invariants and independent computations (SPEC §2–§4)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dipspec.layers import (
    GaussianUpsample,
    LipschitzConv2d,
    MeanOnlyBatchNorm,
    gaussian_kernel,
    gaussian_upsample,
    lipschitz_divisor,
    lipschitz_normalise,
    precompute_sigma_max,
    sigma_max,
)


def _exact_norm(weight):
    return torch.linalg.matrix_norm(weight.detach().double().reshape(weight.shape[0], -1), ord=2)


# --- golden -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", ["0.1", "0.5", "1.0"])
def test_gaussian_kernel_golden(golden, sigma):
    expected = np.array(golden.expected["gaussian_kernels"][sigma])
    np.testing.assert_allclose(gaussian_kernel(float(sigma)).numpy(), expected, rtol=1e-9,
                               atol=1e-300)


@pytest.mark.parametrize("sigma", ["0.1", "0.5", "1.0"])
def test_gaussian_upsample_golden(golden, sigma):
    data = golden.npz("gaussian_upsample")
    x = torch.from_numpy(data["input"])
    expected = data[f"output_sigma_{sigma}"]
    np.testing.assert_allclose(gaussian_upsample(x, float(sigma)).numpy(), expected, rtol=1e-9,
                               atol=1e-15)
    module = GaussianUpsample(2, float(sigma))
    np.testing.assert_allclose(module(x.float()).double().numpy(), expected, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("lam", ["0.5", "1.4", "100.0"])
def test_lipschitz_golden(golden, lam):
    weight = torch.from_numpy(golden.npz("lipschitz_weight")["weight"])
    case = golden.expected["lipschitz"][lam]
    sigma = sigma_max(weight)
    assert sigma.item() == pytest.approx(case["sigma_max"], rel=1e-9)
    assert lipschitz_divisor(sigma, float(lam)).item() == pytest.approx(case["divisor"], rel=1e-9)
    conv = LipschitzConv2d(3, 4, 3, lipschitz_lambda=float(lam)).double()
    with torch.no_grad():
        conv.weight.copy_(weight)
    expected = weight / case["divisor"]
    torch.testing.assert_close(conv.effective_weight(), expected, rtol=1e-12, atol=0)


# --- Lipschitz control --------------------------------------------------------------------------
def test_sigma_max_matches_svd_float32():
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(6, 32, 16, 3, 3, generator=gen)
    for w, s in zip(weights, sigma_max(weights)):
        assert s.item() == pytest.approx(_exact_norm(w).item(), rel=1e-5)


def test_lipschitz_bound_holds_after_adam_steps():
    torch.manual_seed(0)
    conv = LipschitzConv2d(8, 16, 3, lipschitz_lambda=0.7, padding=1)
    opt = torch.optim.Adam(conv.parameters(), lr=0.05)
    x, target = torch.randn(2, 8, 12, 12), 5 * torch.randn(2, 16, 12, 12)
    for _ in range(200):
        opt.zero_grad()
        F.mse_loss(conv(x), target).backward()
        opt.step()
    # the raw weight grew far beyond λ, the applied one did not
    assert _exact_norm(conv.weight) > 1.0
    assert _exact_norm(conv.effective_weight()) <= 0.7 + 1e-6


def test_lipschitz_untouched_below_lambda():
    conv = LipschitzConv2d(4, 4, 3, lipschitz_lambda=1e3)
    assert torch.equal(conv.effective_weight(), conv.weight)
    assert torch.equal(lipschitz_normalise(conv.weight, None), conv.weight)


def test_lipschitz_gradient_reaches_raw_weight_without_flowing_through_sigma():
    conv = LipschitzConv2d(4, 4, 3, lipschitz_lambda=0.1)
    x = torch.randn(1, 4, 6, 6)
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    # σ is a constant: the gradient is exactly that of W̄ / d with d fixed
    divisor = lipschitz_divisor(sigma_max(conv.weight), 0.1)
    w = conv.weight.detach().clone().requires_grad_(True)
    F.conv2d(x, w / divisor, conv.bias.detach()).sum().backward()
    torch.testing.assert_close(conv.weight.grad, w.grad)


def test_precomputed_sigma_equals_per_layer():
    torch.manual_seed(1)
    layers = [LipschitzConv2d(8, 8, 3, lipschitz_lambda=0.5) for _ in range(3)]
    singles = [layer.effective_weight().detach() for layer in layers]
    precompute_sigma_max(layers)
    assert all(layer._divisor_cache is not None for layer in layers)
    batched = [layer.effective_weight().detach() for layer in layers]
    for a, b in zip(singles, batched):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert all(layer._divisor_cache is None for layer in layers)  # used once


@pytest.mark.parametrize("bad", [-1.0, 0, 0.0, float("nan"), float("inf"), -float("inf")])
def test_lipschitz_rejects_bad_lambda(bad):
    with pytest.raises(ValueError, match="positive finite number, or None for plain DIP"):
        LipschitzConv2d(2, 2, 3, lipschitz_lambda=bad)
    with pytest.raises(ValueError, match="positive finite number, or None for plain DIP"):
        lipschitz_normalise(torch.randn(2, 2, 3, 3), bad)


@pytest.mark.parametrize("bad", ["1.4", True])
def test_lipschitz_rejects_non_numbers(bad):
    with pytest.raises(TypeError, match="lipschitz_lambda must be a number"):
        LipschitzConv2d(2, 2, 3, lipschitz_lambda=bad)


def test_lipschitz_none_is_plain():
    conv = LipschitzConv2d(2, 2, 3, lipschitz_lambda=None)
    assert conv.lipschitz_lambda is None and conv.effective_weight() is conv.weight


# --- Gaussian upsampling -------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5, 1.0, 2.0])
def test_gaussian_upsample_equals_transposed_conv(sigma):
    x = torch.rand(2, 5, 7, 9, dtype=torch.float64)
    kernel = gaussian_kernel(sigma, dtype=torch.float32).double().expand(5, 1, 5, 5)
    reference = F.conv_transpose2d(x, kernel, stride=2, padding=2, output_padding=1, groups=5)
    out = gaussian_upsample(x, sigma)
    assert out.shape == (2, 5, 14, 18)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    module = GaussianUpsample(5, sigma)
    torch.testing.assert_close(module(x.float()), reference.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.0])
def test_gaussian_upsample_gradient_equals_autograd_of_transposed_conv(sigma):
    # the gradient of the SPEC §4 definition, computed independently by autograd
    x = torch.rand(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    kernel = gaussian_kernel(sigma, dtype=torch.float32).double().expand(3, 1, 5, 5)
    upstream = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    reference = F.conv_transpose2d(x, kernel, stride=2, padding=2, output_padding=1, groups=3)
    (expected,) = torch.autograd.grad(reference, x, upstream)
    (got,) = torch.autograd.grad(gaussian_upsample(x, sigma), x, upstream)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-13)
    small = torch.rand(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: gaussian_upsample(t, sigma), (small,))


def test_gaussian_upsample_has_no_parameters_and_keeps_dtype():
    module = GaussianUpsample(3, 0.5)
    assert list(module.parameters()) == []
    assert module(torch.rand(1, 3, 4, 4, dtype=torch.float64)).dtype == torch.float64


def test_gaussian_kernel_limits():
    assert torch.equal(gaussian_kernel(0.0), F.pad(torch.ones(1, 1), (2, 2, 2, 2)).double())
    np.testing.assert_allclose(gaussian_kernel(1e-4).numpy(), gaussian_kernel(0.0).numpy(),
                               atol=1e-12)
    for sigma in (0.1, 0.5, 1.0, 3.0):
        assert gaussian_kernel(sigma).sum().item() == pytest.approx(1.0)
    # larger σ spreads the mass away from the centre
    assert gaussian_kernel(1.0)[2, 2] < gaussian_kernel(0.5)[2, 2] < gaussian_kernel(0.1)[2, 2]


def test_delta_kernel_is_zero_insertion():
    x = torch.rand(1, 2, 3, 4)
    out = gaussian_upsample(x, 0.0)
    assert torch.equal(out[:, :, ::2, ::2], x)
    assert out[:, :, 1::2].abs().sum() == 0 and out[:, :, :, 1::2].abs().sum() == 0


def test_gaussian_rejects_negative_sigma():
    with pytest.raises(ValueError, match="gaussian_sigma must be >= 0"):
        GaussianUpsample(3, -0.1)
    with pytest.raises(ValueError, match="gaussian_sigma must be >= 0"):
        gaussian_kernel(-1)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gaussian_sigma must be >= 0 and finite"):
            GaussianUpsample(3, bad)


# --- mean-only batch norm -------------------------------------------------------------------------
def test_mean_only_batchnorm_per_sample_mean_no_scale():
    bn = MeanOnlyBatchNorm(3)
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = 4 * torch.randn(2, 3, 5, 6) + 3
    y = bn(x)
    torch.testing.assert_close(y.mean(dim=(2, 3)), bn.bias.detach().expand(2, 3))
    # no division: deviations from the mean keep their size
    torch.testing.assert_close(y - y.mean(dim=(2, 3), keepdim=True),
                               x - x.mean(dim=(2, 3), keepdim=True))
