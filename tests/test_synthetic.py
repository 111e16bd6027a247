"""The synthetic stripes-and-lines image of the trajectory experiment."""

import pytest
import torch

from dipspec.synthetic import CORNERS, pattern_mask, stripes_and_lines


def test_shape_range_and_determinism():
    x = stripes_and_lines((40, 48), pattern_fraction=0.3, channels=3)
    assert x.shape == (1, 3, 40, 48) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, stripes_and_lines((40, 48), pattern_fraction=0.3, channels=3))
    assert torch.equal(x[:, 0], x[:, 2])


@pytest.mark.parametrize("fraction, side", [(0.0, 0), (0.25, 16), (0.5, 32), (1.0, 64)])
def test_pattern_square_side(fraction, side):
    assert pattern_mask(64, fraction).sum() == side * side
    x = stripes_and_lines(64, pattern_fraction=fraction)
    if side:
        square = x[0, 0, :side, :side]
        assert torch.equal(square[0::2], torch.zeros_like(square[0::2]))  # horizontal lines
        assert torch.equal(square[1::2], torch.ones_like(square[1::2]))


@pytest.mark.parametrize("corner", CORNERS)
def test_pattern_corner(corner):
    mask = pattern_mask(20, 0.5, corner)[0, 0]
    rows = slice(0, 10) if corner.startswith("top") else slice(10, 20)
    cols = slice(0, 10) if corner.endswith("left") else slice(10, 20)
    assert mask[rows, cols].sum() == 100 and mask.sum() == 100


def test_larger_pattern_adds_high_frequencies():
    def high_share(x):
        power = torch.fft.fft2(x[0, 0] - x.mean()).abs().square()
        freq = torch.fft.fftfreq(64).abs()
        high = (freq[:, None] > 0.25) | (freq[None, :] > 0.25)
        return float(power[high].sum() / power.sum())

    shares = [high_share(stripes_and_lines(64, pattern_fraction=f)) for f in (0.2, 0.5, 1.0)]
    assert shares[0] < shares[1] < shares[2]
    assert high_share(stripes_and_lines(64, pattern_fraction=0.0)) < 0.05


def test_smooth_part_has_stripes_and_a_dark_triangle():
    x = stripes_and_lines(64, pattern_fraction=0.0)[0, 0]
    assert torch.isclose(x[56, 56], torch.tensor(0.1))  # inside the triangle
    stripes = x[:20, :20]
    assert 0.24 < stripes.min() < 0.3 and 0.7 < stripes.max() < 0.76
    torch.testing.assert_close(x[3, 5], x[5, 3])  # constant along the anti-diagonals


@pytest.mark.parametrize("kwargs, message", [
    ({"pattern_fraction": 1.5}, "pattern_fraction"),
    ({"line_period": 1}, "line_period"),
    ({"channels": 2}, "channels"),
    ({"corner": "middle"}, "corner"),
    ({"size": 2}, "at least 4x4"),
])
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stripes_and_lines(**{"size": 16, **kwargs})
