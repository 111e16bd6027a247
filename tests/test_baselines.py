"""Chakrabarty & Maji's baselines: DIP Linear-128/2048 and ReLUNet (SPEC §2)."""

import numpy as np
import pytest
import torch
from torch import nn

from dipspec import fit
from dipspec.baselines import LINEAR_DIP_DEPTH, linear_dip_parameter_count
from dipspec.models import LinearDIP, ReLUNet, make_input
from dipspec.tasks import Denoise


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_linear_dip_shapes_and_layers():
    net = LinearDIP(32, (12, 10), out_channels=3, seed=0)
    channels, height, width = net.input_shape(12, 10)
    z = make_input("noise", channels, (height, width), seed=0)
    assert z.shape == (1, 3, 12, 10)
    out = net(z)
    assert out.shape == (1, 3, 12, 10) and 0 <= out.min() and out.max() <= 1
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == LINEAR_DIP_DEPTH == 21
    assert linears[0].in_features == 3 * 12 * 10 and linears[-1].out_features == 3 * 12 * 10
    assert {m.out_features for m in linears[:-1]} == {32}
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 20 and all(a.negative_slope == 0.2 for a in acts)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Upsample)) for m in net.modules())


@pytest.mark.parametrize("width, expected", [(128, 12_945_920), (2048, 281_108_480)])
def test_linear_dip_parameter_counts_at_128(width, expected):
    # 128x128 colour (the paper images downsampled x4): 49152 inputs and outputs.
    n = 3 * 128 * 128
    by_hand = (n * width + width) + 19 * (width * width + width) + (width * n + n)
    assert linear_dip_parameter_count(width, 128, 128, channels=3) == by_hand == expected
    with torch.device("meta"):  # count without allocating 1 GB of weights
        assert _count(LinearDIP(width, 128, out_channels=3)) == expected


def test_linear_dip_parameter_count_matches_a_real_model():
    net = LinearDIP(16, (6, 5), out_channels=1, depth=4, seed=0)
    assert _count(net) == linear_dip_parameter_count(16, 6, 5, channels=1, depth=4)


def test_linear_dip_rejects_other_sizes():
    with pytest.raises(ValueError, match="built for 8x8"):
        LinearDIP(8, 8).input_shape(16, 16)
    with pytest.raises(ValueError, match="width"):
        LinearDIP(0, 8)


def test_relunet_structure():
    net = ReLUNet(seed=0)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == (
        [(2, 256)] + [(256, 256)] * 8 + [(256, 3)])
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 9
    assert net.pixel_batch == 2048 and net.input_shape(7, 9) == (2, 7, 9)


def test_relunet_maps_each_coordinate_to_its_pixel():
    net = ReLUNet(depth=3, width=8, out_channels=1, seed=0).eval()
    grid = make_input("meshgrid", 2, (3, 5))
    out = net(grid)
    assert out.shape == (1, 1, 3, 5)
    # pixel (row 2, column 1) is the MLP at (x, y) = (0.25, 1.0)
    expected = net.body(torch.tensor([[0.25, 1.0]]))[0, 0]
    torch.testing.assert_close(out[0, 0, 2, 1], expected)


def test_relunet_sparse_backward_equals_dense():
    torch.manual_seed(0)
    # pixel_batch below the 144 pixels: the sparse path runs (at or above it, the plain one)
    net = ReLUNet(depth=4, width=16, pixel_batch=20, seed=1)
    ref = ReLUNet(depth=4, width=16, seed=1)
    grid = make_input("meshgrid", 2, (12, 12))
    target = torch.rand(1, 3, 12, 12)
    pixels = torch.randint(144, (20,))
    out_dense = ref.body(grid.permute(0, 2, 3, 1).reshape(-1, 2)).reshape(1, 12, 12, 3)
    for out in (net(grid), out_dense.permute(0, 3, 1, 2)):
        loss = (out.flatten(2)[..., pixels] - target.flatten(2)[..., pixels]).square().mean()
        loss.backward()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_relunet_rejects_a_noise_code():
    with pytest.raises(ValueError, match="meshgrid"):
        ReLUNet()(torch.rand(1, 32, 4, 4))


@pytest.mark.parametrize("model, kind", [
    (lambda: LinearDIP(16, (36, 36), out_channels=1, depth=3), "noise"),
    (lambda: ReLUNet(depth=3, width=16, out_channels=1, pixel_batch=64), "meshgrid"),
])
def test_baselines_go_through_fit(model, kind):
    clean = torch.rand(1, 1, 36, 36)
    seen = []
    result = fit(Denoise(clean=clean, seed=0), model=model(), iterations=6, input_kind=kind,
                 device="cpu", metrics_every=2, progress=False,
                 callbacks=[lambda info: seen.append(info["iteration"])])
    assert result.output.shape == (1, 1, 36, 36)
    assert result.history["psnr"].notna().all() and seen == list(range(6))
    assert result.history["fbc_1"].notna().sum() == 3
    losses = result.history["loss"]
    assert losses.iloc[-1] < losses.iloc[0]


class _IdentityOperator(Denoise):
    """Denoising with A overridden (still the identity): fit takes its whole-image path."""

    def A(self, x):  # noqa: N802
        return x


def test_relunet_minibatch_only_fit_equals_whole_image_fit():
    # Under the identity operator fit feeds ReLUNet only the minibatch's coordinates and
    # evaluates the whole image only on logged steps; the trajectory must not change.
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 24, 20, dtype=torch.float64, generator=generator)
    results = []
    for task_type in (Denoise, _IdentityOperator):
        net = ReLUNet(depth=4, width=32, pixel_batch=64, seed=3)
        results.append(fit(task_type(clean=clean, seed=1), model=net, iterations=30,
                           input_kind="meshgrid", log_every=7, metrics_every=0,
                           reg_noise_std=0.01, device="cpu", dtype=torch.float64,
                           progress=False))
    fast, whole = results
    assert list(fast.history["iteration"]) == [0, 7, 14, 21, 28, 29]
    torch.testing.assert_close(fast.output, whole.output, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.best, whole.best, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.history[["loss", "psnr"]].to_numpy(),
                               whole.history[["loss", "psnr"]].to_numpy(), rtol=1e-10)
    assert fast.history["psnr"].iloc[-1] > fast.history["psnr"].iloc[0]


def test_large_networks_get_fused_adam_with_the_same_trajectory(monkeypatch):
    # Linear-2048's weight matrices make the multi-tensor Adam the slowest part of a CPU
    # step, so big networks switch to the fused kernel: same rule, same trajectory.
    from dipspec.fitting import engine

    small = [torch.zeros(16, 16)]
    assert not engine.adam(small, 1e-3).defaults["fused"]
    assert engine.adam([torch.zeros(1 << 22)], 1e-3).defaults["fused"]
    # fit_many decides by one member's tensors, not by the stacked ones
    assert not engine.adam([torch.zeros(8 << 20)], 1e-3,
                          member_params=[torch.zeros(1 << 20)]).defaults["fused"]

    clean = torch.rand(1, 1, 12, 12, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(0))
    histories = []
    for threshold in (1, 1 << 40):
        monkeypatch.setattr(engine, "FUSED_ADAM_MIN_NUMEL", threshold)
        net = LinearDIP(32, (12, 12), out_channels=1, depth=3, seed=2)
        result = fit(Denoise(clean=clean, seed=1), model=net, iterations=40, lr=1e-3,
                     input_kind="noise", metrics_every=0, device="cpu",
                     dtype=torch.float64, progress=False)
        histories.append(result.history[["loss", "psnr"]].to_numpy())
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-9)


def test_retain_freed_memory_raises_both_glibc_thresholds(monkeypatch):
    import ctypes
    import sys

    from dipspec import baselines

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value.value))
            return 1

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert baselines.retain_freed_memory() is True
    assert calls == [(-3, 2**31 - 1), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD

    def no_glibc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_glibc)
    assert baselines.retain_freed_memory() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert baselines.retain_freed_memory() is False
