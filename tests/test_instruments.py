"""The engine's meters (fitting.instruments.Instruments) against the public measures."""

import math

import pytest
import torch

from dipspec.fitting.instruments import Instruments
from dipspec.measure import blurriness, fbc, mlv_sharpness
from dipspec.tasks import SuperResolve


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_instruments_equal_the_public_measures_bit_for_bit(dtype):
    gen = torch.Generator().manual_seed(3)
    references = torch.rand(3, 3, 48, 40, generator=gen, dtype=dtype)
    out = torch.rand(3, 3, 48, 40, generator=gen, dtype=dtype)
    row = Instruments(references, with_ratio=True)(out, out)
    blur, sharp = blurriness(out), mlv_sharpness(out)
    expected = torch.cat([fbc(out, references), torch.stack([blur, sharp, blur / sharp], 1)], 1)
    assert row.shape == (3, 8)
    assert torch.equal(row, expected)


def test_instruments_measure_fbc_in_the_observation_space():
    clean = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    task = SuperResolve(clean=clean, factor=4)
    out = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    low = task.A(out)
    row = Instruments(task.reference, with_ratio=True)(out, low)
    assert torch.equal(row[:, :5], fbc(low, task.reference))  # bands of A(output) against y
    assert torch.equal(row[:, 5], blurriness(out))  # the ratio is read on the output itself


def test_instruments_without_ratio_leave_nan():
    refs = torch.rand(2, 1, 16, 16)
    row = Instruments(refs, with_ratio=False)(refs, refs)
    assert torch.allclose(row[:, :5], torch.ones(2, 5))
    assert all(math.isnan(v) for v in row[:, 5:].flatten().tolist())
