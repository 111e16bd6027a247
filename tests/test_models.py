"""Networks: shapes, the paper's layer counts, determinism, errors (SPEC §2)."""

import pytest
import torch

from dipspec.layers import GaussianUpsample, LipschitzConv2d, MeanOnlyBatchNorm
from dipspec.models import ConvNet, Decoder, SkipNet, controlled_layers, make_input


def test_decoder_matches_paper_structure():
    net = Decoder(lipschitz_lambda=1.4, channels=16)
    convs = [m for m in net.modules() if isinstance(m, LipschitzConv2d)]
    assert len(convs) == 12 and all(c.kernel_size == (3, 3) for c in convs)
    assert len(controlled_layers(net)) == 12
    assert sum(isinstance(m, MeanOnlyBatchNorm) for m in net.modules()) == 12
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last.kernel_size == (1, 1) and not isinstance(last, LipschitzConv2d)


def test_decoder_gaussian_stages_use_paper_sigmas():
    net = Decoder(channels=8, upsample="gaussian")
    sigmas = [m.gaussian_sigma for m in net.modules() if isinstance(m, GaussianUpsample)]
    assert sigmas == [0.1, 0.1, 0.1, 0.5, 0.5]


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "deconv", "gaussian"])
def test_decoder_output_shape_and_range(mode):
    net = Decoder(channels=8, stages=3, upsample=mode, gaussian_sigma=0.5, lipschitz_lambda=2.0)
    z = make_input("fourier", 32, (3, 2))
    out = net(z)
    assert out.shape == (1, 3, 24, 16)
    assert out.min() >= 0 and out.max() <= 1


def test_decoder_same_seed_same_weights():
    a, b = Decoder(channels=8, seed=3), Decoder(channels=8, seed=3)
    c = Decoder(channels=8, seed=4)
    for pa, pb, _ in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_kaiming_uniform_fan_in_bound():
    net = Decoder(channels=64, seed=0)
    conv = [m for m in net.modules() if isinstance(m, LipschitzConv2d)][1]
    bound = (6 / (64 * 9)) ** 0.5  # gain √2, a = 0
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound


def test_skipnet_and_convnet_shapes():
    assert SkipNet(in_channels=8, channels=8, scales=3)(torch.rand(1, 8, 32, 40)).shape == (
        1, 3, 32, 40)
    assert SkipNet(in_channels=8, channels=8, scales=2, out_channels=1,
                   padding_mode="zeros")(torch.rand(1, 8, 16, 16)).shape == (1, 1, 16, 16)
    assert ConvNet(channels=8, blocks=4, out_channels=1)(
        make_input("noise", 32, (9, 11))).shape == (1, 1, 9, 11)


def test_make_input_kinds():
    z = make_input("fourier", 32, (4, 4), seed=1)
    assert z.shape == (1, 32, 4, 4)
    # sin² + cos² = 1 channel-pairwise
    torch.testing.assert_close(z[:, :16] ** 2 + z[:, 16:] ** 2, torch.ones(1, 16, 4, 4))
    noise = make_input("noise", 8, 5)
    assert 0 <= noise.min() and noise.max() <= 0.1
    grid = make_input("meshgrid", 2, (3, 5))
    assert grid[0, 0, 0].tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert grid[0, 1, :, 0].tolist() == [0, 0.5, 1.0]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Decoder(upsample="bicubic"), "unknown upsample mode"),
        (lambda: Decoder(upsample="gaussian", gaussian_sigma=(0.1, 0.2)), "one value per stage"),
        (lambda: Decoder(lipschitz_lambda=-2), "lipschitz_lambda must be a positive finite"),
        (lambda: Decoder(lipschitz_lambda=0), "or None for plain DIP"),
        (lambda: ConvNet(lipschitz_lambda=float("inf")), "or None for plain DIP"),
        (lambda: Decoder(upsample="gaussian", gaussian_sigma=float("nan")), "finite"),
        (lambda: make_input("pink", 4, 4), "unknown input kind"),
        (lambda: Decoder(stages=2).input_shape(10, 8), "multiple of 4"),
    ],
)
def test_model_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
