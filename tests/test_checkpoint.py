"""Interruption loses nothing: checkpoints, resume to the same bytes, Ctrl-C, divergence.

A resumed fit must be indistinguishable from one that never stopped: same history (exactly),
same outputs, best image, kept snapshots, stop iteration and backtracks — on the CPU in float32
too, because every piece of state (weights, σ state, Adam, generators, history, oracle,
averaging, backtracking snapshot, stop rule) is in the checkpoint.
"""

import math
import signal

import pandas as pd
import pytest
import torch

import dipspec
from dipspec import fit, fit_many
from dipspec.fitting import FitDiverged, FitInterrupted, request_interrupt, resume
from dipspec.layers import set_sigma_method
from dipspec.models import Decoder, ReLUNet
from dipspec.tasks import Denoise


@pytest.fixture(scope="module")
def astronaut40():
    return dipspec.data.load_image("astronaut", size=40)


OPTIONS = dict(iterations=60, reg_noise_std=1 / 30, ema=0.9, backtracking=True,
               backtrack_every=4, stop_rule="paper", stop_window=10, stop_eps=20.0,
               keep_outputs=(5, 40), device="cpu", progress=False, seed=2)


def _decoder():
    return set_sigma_method(Decoder(out_channels=3, channels=8, stages=2, lipschitz_lambda=1.5,
                                    upsample="gaussian", gaussian_sigma=(0.1, 0.5), seed=2),
                            "warm")


def _same(a, b):
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    for name in ("output", "best", "output_avg"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or torch.equal(x, y), name
    assert sorted(a.snapshots) == sorted(b.snapshots)
    assert all(torch.equal(a.snapshots[i], b.snapshots[i]) for i in a.snapshots)
    assert (a.stop_iteration, a.backtracks) == (b.stop_iteration, b.backtracks)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


class _Killed(Exception):
    """Stands in for SIGKILL: the process dies, only the last checkpoint survives."""


def _kill_at(iteration):
    def callback(info):
        if info["iteration"] == iteration:
            raise _Killed

    return callback


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_resume_after_a_kill_gives_the_same_bytes(astronaut40, tmp_path, dtype):
    task = Denoise(clean=astronaut40, seed=0)
    whole = fit(task, _decoder(), dtype=dtype, **OPTIONS)
    path = tmp_path / "fit.pt"
    with pytest.raises(_Killed):
        fit(task, _decoder(), dtype=dtype, checkpoint=path, checkpoint_every=7,
            callbacks=[_kill_at(31)], **OPTIONS)
    resumed = resume(path, progress=False)  # from the checkpoint after 28 iterations
    assert whole.stop_iteration is not None  # the stop rule's state crossed the checkpoint
    _same(whole, resumed)


def test_resume_fit_many_and_a_minibatch_network(astronaut40, tmp_path):
    task = Denoise(clean=astronaut40, seed=0)
    options = dict(OPTIONS, auto_stop=False, keep_outputs=())
    del options["seed"]

    def nets():
        return [_decoder() for _ in range(2)]

    whole = fit_many(task, nets(), seeds=[0, 1], **options)
    path = tmp_path / "many.pt"
    with pytest.raises(_Killed):
        fit_many(task, nets(), seeds=[0, 1], checkpoint=path, checkpoint_every=10,
                 callbacks=[_kill_at(25)], **options)
    for a, b in zip(whole, resume(path, progress=False)):
        _same(a, b)

    relu = dict(iterations=40, metrics_every=3, device="cpu", progress=False)
    whole = fit(task, ReLUNet(depth=3, width=16, pixel_batch=64, seed=1), **relu)
    with pytest.raises(_Killed):
        fit(task, ReLUNet(depth=3, width=16, pixel_batch=64, seed=1), checkpoint=path,
            checkpoint_every=5, callbacks=[_kill_at(22)], **relu)
    _same(whole, resume(path, progress=False))


def test_ctrl_c_stops_at_the_end_of_the_iteration_saves_and_resumes(astronaut40, tmp_path):
    task = Denoise(clean=astronaut40, seed=0)
    whole = fit(task, _decoder(), **OPTIONS)
    path = tmp_path / "fit.pt"

    def press_ctrl_c(info):
        if info["iteration"] == 17:
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, as a terminal sends it

    with pytest.raises(FitInterrupted) as caught:
        fit(task, _decoder(), checkpoint=path, callbacks=[press_ctrl_c], **OPTIONS)
    stopped = caught.value
    assert (stopped.reason, stopped.iteration, stopped.checkpoint) == ("SIGINT", 17, str(path))
    partial = stopped.result
    assert partial.interrupted and partial.history["iteration"].iloc[-1] == 17
    pd.testing.assert_frame_equal(partial.history, whole.history.iloc[:18], check_exact=True)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    _same(whole, resume(path, progress=False))


def test_sigterm_request_and_a_second_ctrl_c(astronaut40, tmp_path):
    task = Denoise(clean=astronaut40, seed=0)
    options = dict(OPTIONS, auto_stop=False)

    def terminate(info):  # what the CLI's SIGTERM handler calls
        if info["iteration"] == 9:
            assert request_interrupt("SIGTERM")

    with pytest.raises(FitInterrupted) as caught:
        fit(task, _decoder(), callbacks=[terminate], **options)
    assert caught.value.reason == "SIGTERM" and caught.value.checkpoint is None

    def press_twice(info):  # the second press interrupts at once, mid-iteration
        if info["iteration"] == 9:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(FitInterrupted) as caught:
        fit(task, _decoder(), checkpoint=tmp_path / "x.pt", callbacks=[press_twice], **options)
    assert caught.value.reason == "KeyboardInterrupt" and caught.value.iteration == 8
    assert caught.value.checkpoint is None  # mid-iteration: no inconsistent state is saved
    assert not request_interrupt()  # nothing runs now


def test_a_diverged_loss_stops_with_the_best_output_kept(astronaut40):
    task = Denoise(clean=astronaut40, seed=0)
    net = Decoder(out_channels=3, channels=8, stages=2, seed=0)

    def poison(info):  # NaN weights from iteration 30 on
        if info["iteration"] == 30:
            with torch.no_grad():
                next(net.parameters()).fill_(math.nan)

    with pytest.raises(FitDiverged, match="non-finite") as caught:
        fit(task, net, iterations=120, device="cpu", progress=False, callbacks=[poison])
    result = caught.value.result
    assert result.diverged and result.history["iteration"].iloc[-1] == 50  # checked every 50
    assert torch.isfinite(result.best).all() and not torch.isfinite(result.output).all()
    assert result.history["psnr"].iloc[:31].max() == pytest.approx(
        float(dipspec.metrics.psnr(result.best, task.clean)[0]), abs=1e-4)

    nets = [Decoder(out_channels=3, channels=8, stages=2, seed=s) for s in (0, 1)]
    with pytest.warns(UserWarning, match="member 0"):
        results = fit_many(task, nets, seeds=[0, 1], iterations=60, device="cpu",
                           progress=False, lr=1e30)
    assert all(r.diverged for r in results)  # an absurd lr ruins both, each is reported


def test_wrong_channels_and_bad_loop_values_are_refused(astronaut40):
    grey = Denoise(clean=astronaut40.mean(1, keepdim=True))
    net = Decoder(out_channels=3, channels=8, stages=2)
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(ValueError, match="3-channel images but the task's images have 1"):
        fit(grey, net, iterations=5, device="cpu", progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))  # no update
    task = Denoise(clean=astronaut40)
    for bad, match in [(dict(lr=math.inf), "lr must"), (dict(lr=0.0), "lr must"),
                       (dict(ema=1.5), "ema must"), (dict(reg_noise_std=math.nan), "reg_noise"),
                       (dict(checkpoint_every=0), "checkpoint_every")]:
        with pytest.raises(ValueError, match=match):
            fit(task, iterations=2, device="cpu", progress=False, **bad)
