"""One engine: ``fit`` and ``fit_many`` are two faces of the same loop.

``fit`` is the engine with one member and ``fit_many`` with K, so one member through either face
must give the same history bit for bit, with every feature of the loop switched on; and K
members stacked into one grouped network must follow K sequential fits through a whole fit in
float64 (only the order of the sums inside a grouped convolution differs).
"""

import numpy as np
import pandas as pd
import pytest
import torch

import dipspec
from dipspec import fit, fit_many
from dipspec.models import Decoder
from dipspec.tasks import Denoise


@pytest.fixture(scope="module")
def astronaut40():
    return dipspec.data.load_image("astronaut", size=40)


def _decoder(lam, seed, sigma=(0.1, 0.5)):
    return Decoder(out_channels=3, channels=8, stages=2, lipschitz_lambda=lam, seed=seed,
                   upsample="gaussian", gaussian_sigma=sigma)


def test_fit_is_fit_many_with_one_member_every_option(astronaut40):
    """λ, Gaussian σ, backtracking (provoked), EMA, input noise, auto-stop (fires), kept outputs."""
    task = Denoise(clean=astronaut40, seed=0)
    options = dict(iterations=80, dtype=torch.float64, reg_noise_std=1 / 30, ema=0.9,
                   backtracking=True, backtrack_every=5, stop_rule="paper", stop_window=10,
                   stop_eps=0.5, keep_outputs=(3, 17), device="cpu", progress=False, seed=4)
    results = []
    for face in ("fit", "fit_many"):
        model = _decoder(1.5, 4)

        def sabotage(info, model=model):  # black out the output once: backtracking undoes it
            if info["iteration"] == 12:  # (PSNR against y: 11.1 dB -> 5.4 dB, a 5.7 dB fall)
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        if name.endswith("bias"):
                            p.fill_(-30.0)

        if face == "fit":
            results.append(fit(task, model, callbacks=[sabotage], **options))
        else:
            seed = options.pop("seed")
            results.append(fit_many([task], [model], seeds=[seed], callbacks=[sabotage],
                                    **options)[0])
    single, member = results
    assert single.backtracks >= 1 and single.stop_iteration is not None
    assert single.history["iteration"].iloc[-1] == single.stop_iteration < 79  # ended there
    pd.testing.assert_frame_equal(single.history, member.history, check_exact=True)
    for name in ("output", "best", "output_avg"):
        assert torch.equal(getattr(single, name), getattr(member, name)), name
    assert sorted(single.snapshots) == sorted(member.snapshots) == [3, 17]
    assert all(torch.equal(single.snapshots[i], member.snapshots[i]) for i in (3, 17))
    assert (single.stop_iteration, single.backtracks) == (member.stop_iteration,
                                                         member.backtracks)
    for p, q in zip(single.model.parameters(), member.model.parameters()):
        assert torch.equal(p, q)


def test_members_follow_sequential_fits_through_a_whole_fit_float64(astronaut40):
    """200 iterations, three members with their own λ, σ and seed: equal to 1e-12."""
    task = Denoise(clean=astronaut40, seed=0)
    spec = [(None, 0, (0.1, 0.5)), (1.0, 1, (0.5, 0.5)), (2.0, 2, (0.0, 1.0))]
    options = dict(iterations=200, dtype=torch.float64, reg_noise_std=1 / 30, ema=0.9,
                   backtracking=True, backtrack_every=3, metrics_every=10, device="cpu",
                   progress=False)
    sequential = [fit(task, _decoder(lam, seed, sigma), seed=seed, **options)
                  for lam, seed, sigma in spec]
    batched = fit_many(task, [_decoder(lam, seed, sigma) for lam, seed, sigma in spec],
                       seeds=[seed for _, seed, _ in spec], **options)
    for a, b in zip(sequential, batched):
        assert a.history["iteration"].tolist() == b.history["iteration"].tolist()
        np.testing.assert_allclose(b.history.to_numpy(), a.history.to_numpy(), rtol=1e-12,
                                   atol=1e-12, equal_nan=True)
        torch.testing.assert_close(b.output, a.output, rtol=1e-12, atol=1e-12)
