"""Stop rules as objects (issue 15): the paper's rule, ES-WMV, ES-EMV, the oracle, RatioPlateau.

ES-WMV and ES-EMV are checked against ports of the authors' reference code (the notebooks of
https://github.com/sun-umn/Early_Stopping_for_DIP, written here with NumPy lists as there);
online use in ``fit`` against the offline replay of the same rows.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch

import dipspec
from dipspec import fit, fit_many
from dipspec.data import estimate_noise_sigma
from dipspec.fitting import resume
from dipspec.measure import (
    ESEMV,
    ESWMV,
    STOP_RULES,
    AutoStop,
    Discrepancy,
    OracleRule,
    PaperRule,
    RatioPlateau,
    StopRule,
    first_stop_iteration,
    make_stop_rule,
    replay_variance,
    stop_iteration,
)
from dipspec.nn import Decoder
from dipspec.tasks import Deblock, Denoise, Inpaint


# --- reference ports (the authors' notebooks, NumPy) -------------------------------------------
def _wmv_reference(outputs, window, patience):
    """ES_WMV.ipynb: EarlyStop + the closure's variance; (best_epoch, iteration it stops)."""
    collection, best, best_epoch, wait, stopped = [], math.inf, 0, 0, None
    for epoch, x in enumerate(outputs):
        collection.append(x.reshape(-1))
        if len(collection) > window:
            collection.pop(0)
        if len(collection) == window:
            ave = np.mean(collection, axis=0)
            variance = np.mean([((ave - tmp) ** 2).sum() / ave.size for tmp in collection])
            if stopped is None:
                if variance < best:
                    best, best_epoch, wait = variance, epoch, 0
                else:
                    wait += 1
                    if wait >= patience:
                        stopped = epoch
    return best_epoch, stopped


def _emv_reference(outputs, alpha, patience, burn_in=100):
    """ES_EMV.ipynb: EWMVar.update_av every iteration, check_stop after the burn-in."""
    ema = emv = None
    best, best_epoch, wait, stopped = math.inf, 0, 0, None
    for epoch, x in enumerate(outputs):
        x = x.reshape(-1)
        if epoch == 0:
            ema, emv = x, 0.0
        else:
            delta = x - ema
            ema = np.clip(ema + alpha * delta, 0, 1)
            emv = (1 - alpha) * (emv + alpha * np.linalg.norm(delta) ** 2)
        if epoch > burn_in and stopped is None:
            if emv < best:
                best, best_epoch, wait = emv, epoch, 0
            else:
                wait += 1
                if wait >= patience:
                    stopped = epoch
    return best_epoch, stopped


def _jitter(scale, shape=(1, 3, 6, 5), seed=0, level=0.5):
    """Outputs ``level + 0.01 s_t ξ_t`` (ξ uniform in [-1, 1]): they move least where s_t is."""
    g = torch.Generator().manual_seed(seed)
    return [level + 0.01 * s * (2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1)
            for s in scale]


def _feed(rule, outputs, meters=None):
    return [rule.update(t, x, None if meters is None else meters[t])
            for t, x in enumerate(outputs)]


# --- the paper's rule ---------------------------------------------------------------------------
def test_paper_rule_matches_first_stop_iteration_on_random_sequences():
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(30):
        n, eps = int(rng.choice([5, 20, 60])), float(rng.choice([0.005, 0.02, 0.1]))
        t = np.arange(1200)
        ratios = 3 + 7 * np.exp(-t / rng.uniform(30, 400)) + rng.normal(0, rng.uniform(0, .05),
                                                                             t.size)
        ratios[rng.random(t.size) < 0.1] = np.nan  # not measured there
        keep = np.sort(rng.choice(t, size=900, replace=False))  # logged rows only
        rule = PaperRule(window=n, eps=eps)
        fired = [rule.update(i, None, {"ratio": ratios[i]}) for i in keep]
        expected = first_stop_iteration(ratios[keep], n, eps, iterations=keep)
        assert rule.stop_iteration == expected
        if expected is not None:
            assert rule.fired_at == expected and fired.index(True) == list(keep).index(expected)
        history = pd.DataFrame({"iteration": keep, "ratio": ratios[keep]})
        assert stop_iteration(PaperRule(n, eps), history) == expected
        outcomes.add(expected is None)
    assert outcomes == {True, False}  # both firing and non-firing sequences were checked


def test_paper_rule_golden(golden):
    ratios = golden.stopping_sequence["ratio"]
    rule = make_stop_rule("paper")
    fired = [rule.update(t, None, {"ratio": r}) for t, r in enumerate(ratios)]
    assert rule.stop_iteration == rule.fired_at == 1015 == fired.index(True)
    assert fired[1015:] == [True] * (len(ratios) - 1015)
    history = pd.DataFrame({"iteration": np.arange(len(ratios)), "ratio": ratios})
    assert stop_iteration("paper", history) == first_stop_iteration(ratios) == 1015
    auto = AutoStop()
    assert [auto.update(t, r) for t, r in enumerate(ratios)] == fired


# --- ES-WMV -------------------------------------------------------------------------------------
def test_es_wmv_known_minimum_and_patience():
    # one value per image, alternating in sign with amplitude |t - 40| + 1: the window of five
    # ending at 42 (iterations 38..42, amplitudes 3 2 1 2 3) is the stillest
    values = [0.5 + 0.01 * (-1) ** t * (abs(t - 40) + 1) for t in range(120)]
    outputs = [torch.full((1, 1, 3, 3), v, dtype=torch.float64) for v in values]
    windows = np.lib.stride_tricks.sliding_window_view(np.array(values), 5)
    assert int(np.argmin(windows.var(axis=1))) + 4 == 42
    rule = ESWMV(window=5, patience=25)
    fired = _feed(rule, outputs)
    assert (rule.stop_iteration, rule.fired_at, fired.index(True)) == (42, 67, 67)
    assert _wmv_reference([x.numpy() for x in outputs], 5, 25) == (42, 67)


@pytest.mark.parametrize("window, patience, seed", [(5, 15, 0), (20, 40, 1), (7, 1, 2)])
def test_es_wmv_matches_the_reference_code(window, patience, seed):
    scale = [abs(t - 70) + 2 + 3 * math.sin(t / 3) for t in range(200)]
    outputs = _jitter(scale, seed=seed)
    rule = ESWMV(window=window, patience=patience)
    _feed(rule, outputs)
    best, stopped = _wmv_reference([x.numpy() for x in outputs], window, patience)
    assert stopped is not None
    assert (rule.stop_iteration, rule.fired_at) == (best, stopped)


def test_es_wmv_running_sums_stay_exact_over_many_turns_of_the_ring():
    outputs = _jitter([1.0 + (t % 17) for t in range(250)], shape=(1, 1, 8, 8), seed=3)
    rule = ESWMV(window=9, patience=10_000)
    stacked = torch.stack(outputs)
    for t, x in enumerate(outputs):
        rule.update(t, x)
        if t >= 8:
            direct = stacked[t - 8:t + 1].var(dim=0, unbiased=False).mean().item()
            assert rule.variance == pytest.approx(direct, rel=1e-9, abs=0)
    assert rule.fired_at is None and rule.buffer.shape == (9, 1, 1, 8, 8)


# --- ES-EMV -------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha, patience, burn_in, near", [
    (0.1, 30, 20, (130, 190)), (0.1, 60, 100, (130, 190)), (0.3, 20, 60, (130, 190)),
    # the reference's quirk: the EMV starts at 0, so a burn-in shorter than its warm-up
    # (about 1/alpha iterations) finds the minimum right after the burn-in
    (0.3, 10, 5, (6, 6))])
def test_es_emv_matches_the_reference_code(alpha, patience, burn_in, near):
    outputs = _jitter([abs(t - 150) + 1.0 for t in range(400)], seed=4)
    rule = ESEMV(alpha=alpha, patience=patience, burn_in=burn_in)
    fired = _feed(rule, outputs)
    best, stopped = _emv_reference([x.numpy() for x in outputs], alpha, patience, burn_in)
    assert stopped is not None and stopped - best == patience
    assert (rule.stop_iteration, rule.fired_at, fired.index(True)) == (best, stopped, stopped)
    assert near[0] <= rule.stop_iteration <= near[1]  # the stillest outputs are at t = 150


def test_es_emv_clips_its_average_and_waits_for_the_burn_in():
    rule = ESEMV(alpha=0.5, patience=3, burn_in=10)
    outputs = [torch.full((1, 1, 2, 2), 2.0 if t % 2 else -1.0) for t in range(12)]
    assert not any(_feed(rule, outputs[:11]))  # nothing compared up to the burn-in
    assert rule.best_iteration is None
    assert 0.0 <= float(rule.ema.min()) and float(rule.ema.max()) <= 1.0
    rule.update(11, outputs[11])
    assert rule.best_iteration == 11


# --- the oracle and RatioPlateau ----------------------------------------------------------------
def test_oracle_reports_the_first_best_psnr_and_never_fires():
    psnr = [10.0, 12.0, float("nan"), 15.0, 15.0, 11.0]
    rule = OracleRule()
    assert not any(rule.update(t, None, {"psnr": p}) for t, p in enumerate(psnr))
    assert (rule.stop_iteration, rule.fired_at) == (3, None)
    history = pd.DataFrame({"iteration": range(6), "psnr": psnr})
    assert stop_iteration("oracle", history) == int(history["psnr"].idxmax()) == 3


def test_ratio_plateau_is_free_of_time_scale_and_ratio_level():
    def stop(tau, level=3.0, every=1):
        rule = RatioPlateau()
        for t in range(0, 40 * tau, every):
            if rule.update(t, None, {"ratio": level * (1 + 2.3 * math.exp(-t / tau))}):
                return rule.stop_iteration
        return None

    base = stop(100)
    assert base is not None and 400 < base < 1000
    assert stop(400) == pytest.approx(4 * base, rel=0.01)  # 4x slower dynamics, 4x later
    assert stop(100, level=30.0) == base  # only the relative change matters
    assert stop(100, every=5) == pytest.approx(base, abs=5)
    flat = RatioPlateau()
    assert flat.update(0, None, {"ratio": 3.0}) is False  # needs min_points on each side


def test_ratio_plateau_near_the_paper_on_its_golden_sequence(golden):
    ratios = golden.stopping_sequence["ratio"]
    history = pd.DataFrame({"iteration": np.arange(len(ratios)), "ratio": ratios})
    assert abs(stop_iteration("ratio-plateau", history) - 1015) < 50  # same operating point


# --- state --------------------------------------------------------------------------------------
def _sequence(n=160):
    outputs = _jitter([abs(t - 60) + 1.0 for t in range(n)], seed=5)
    meters = [{"ratio": 3 + 5 * math.exp(-t / 15), "psnr": 20 + math.sin(t / 9),
               "loss": 0.1 * math.exp(-t / 80)}
              for t in range(n)]
    return outputs, meters


@pytest.mark.parametrize("rule", [PaperRule(window=10, eps=0.05), ESWMV(window=6, patience=20),
                                  ESEMV(patience=15, burn_in=10), OracleRule(),
                                  RatioPlateau(min_points=3, rel_tol=0.01),
                                  Discrepancy(noise_sigma=0.2)], ids=repr)
def test_state_dict_round_trip_mid_sequence_gives_identical_decisions(rule):
    outputs, meters = _sequence()
    whole = rule.fresh()
    expected = [whole.update(t, x, m) for t, (x, m) in enumerate(zip(outputs, meters))]
    first = rule.fresh()
    decisions = [first.update(t, outputs[t], meters[t]) for t in range(55)]
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # what a checkpoint does with it
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    first.update(55, outputs[55], meters[55])  # the saved state is a copy, not a view
    second = rule.fresh()
    second.load_state_dict(state)
    decisions += [second.update(t, outputs[t], meters[t]) for t in range(55, len(outputs))]
    assert decisions == expected
    assert (second.stop_iteration, second.fired_at) == (whole.stop_iteration, whole.fired_at)
    assert whole.stop_iteration is not None
    assert rule.last_iteration is None  # the parametrised instance itself was never fed


def test_reset_and_fresh_forget_everything():
    outputs, meters = _sequence(80)
    rule = ESWMV(window=4, patience=5)
    first = _feed(rule, outputs, meters)
    rule.reset()
    assert rule.stop_iteration is None and rule.buffer is None
    assert _feed(rule, outputs, meters) == first
    assert _feed(rule.fresh(), outputs, meters) == first


# --- in fit and fit_many ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut40():
    return dipspec.data.load_image("astronaut", size=40)


def _net(seed=0):
    return Decoder(out_channels=3, channels=6, stages=2, lipschitz_lambda=1.5, seed=seed)


ONLINE = [PaperRule(window=8, eps=1.0), ESWMV(window=5, patience=8),
          ESEMV(patience=8, burn_in=5), OracleRule(), RatioPlateau(min_points=3, rel_tol=0.05)]


@pytest.mark.parametrize("rule", ONLINE, ids=repr)
def test_offline_replay_equals_online_use_in_fit(astronaut40, rule):
    outputs = {}
    result = fit(Denoise(clean=astronaut40, seed=0), _net(), iterations=60, device="cpu",
                 progress=False, stop_rule=rule, log_every=2, metrics_every=2,
                 callbacks=[lambda info: outputs.__setitem__(info["iteration"],
                                                             info["output"].clone())])
    assert result.stop_rule == rule.name and rule.last_iteration is None  # copied, not fed
    assert result.stop_iteration == stop_iteration(rule, result.history, outputs)
    assert result.stop_iteration is not None
    last = int(result.history["iteration"].iloc[-1])
    if isinstance(rule, OracleRule):
        assert result.stopped_at is None and last == 59
        assert result.stop_iteration == int(result.history.loc[result.history["psnr"].idxmax(),
                                                               "iteration"])
    else:
        assert result.stopped_at == last < 59  # the rule ended the fit where it fired
    if isinstance(rule, (ESWMV, ESEMV)):
        assert result.stopped_at - result.stop_iteration >= rule.patience
        # the output returned is the detected iteration's, not the one a patience later
        detected = result.task.finalize(outputs[result.stop_iteration])
        assert torch.equal(result.output, detected)
        assert not torch.equal(result.output, result.task.finalize(outputs[result.stopped_at]))


def test_fit_many_gives_each_member_its_own_rule(astronaut40):
    outputs = [{}, {}]

    def record(info):
        outputs[info["member"]][info["iteration"]] = info["output"].clone()

    task = Denoise(clean=astronaut40, seed=0)
    results = fit_many(task, [_net(0), _net(1)], seeds=[0, 1], iterations=50, device="cpu",
                       progress=False, metrics_every=0, stop_rule=ESWMV(window=4, patience=6),
                       callbacks=[record])
    for result, recorded in zip(results, outputs):
        assert result.stop_rule == "es-wmv" and result.stopped_at is not None
        replay = stop_iteration(ESWMV(window=4, patience=6), result.history, recorded)
        assert result.stop_iteration == replay is not None
        assert int(result.history["iteration"].iloc[-1]) == result.stopped_at


def test_auto_stop_is_the_recommended_rule_and_resume_keeps_a_variance_rule(astronaut40,
                                                                           tmp_path):
    task = Denoise(clean=astronaut40, seed=0)
    paper = fit(task, _net(), iterations=30, device="cpu", progress=False, stop_rule="paper",
                stop_window=5, stop_eps=1e9)
    assert (paper.stop_rule, paper.stop_iteration, paper.stopped_at) == ("paper", 11, 11)
    auto = fit(task, _net(), iterations=30, device="cpu", progress=False, auto_stop=True)
    assert auto.stop_rule == "discrepancy"  # denoising: the study's recommendation
    deblock = Deblock(10, clean=astronaut40, seed=0)
    auto = fit(deblock, _net(), iterations=30, device="cpu", progress=False, auto_stop=True,
               stop_window=5, stop_eps=1e9)
    assert (auto.stop_rule, auto.stop_iteration) == ("paper", 11)  # deblocking: the paper's
    inpaint = Inpaint(keep=0.5, clean=astronaut40, seed=0)
    auto = fit(inpaint, _net(), iterations=3, device="cpu", progress=False, auto_stop=True)
    assert auto.stop_rule == "es-wmv"  # noise-free inverse problems: ES-WMV

    options = dict(iterations=60, device="cpu", progress=False, metrics_every=0,
                   stop_rule=ESEMV(alpha=0.2, patience=20, burn_in=5))
    whole = fit(task, _net(), **options)
    path = tmp_path / "fit.pt"

    def kill(info):
        if info["iteration"] == 17:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        fit(task, _net(), checkpoint=path, checkpoint_every=6, callbacks=[kill], **options)
    resumed = resume(path, progress=False)  # from iteration 12: the rule's state went along
    assert whole.stopped_at is not None and whole.stopped_at < 59
    assert (resumed.stop_rule, resumed.stop_iteration, resumed.stopped_at) == (
        whole.stop_rule, whole.stop_iteration, whole.stopped_at)
    pd.testing.assert_frame_equal(resumed.history, whole.history, check_exact=True)


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, match", [
    (lambda: ESWMV(window=0), "window must be a positive int.*use 100"),
    (lambda: ESWMV(patience=2.5), "patience must be a positive int.*use 1000"),
    (lambda: ESEMV(alpha=1.0), r"alpha must lie in \(0, 1\).*use 0.1"),
    (lambda: ESEMV(burn_in=-1), "burn_in must be an int >= 0"),
    (lambda: PaperRule(window=100, eps=0), "eps must be > 0.*paper uses 0.01"),
    (lambda: RatioPlateau(window_fraction=0.7), r"window_fraction must lie in \(0, 0.5\]"),
    (lambda: RatioPlateau(rel_tol=0), "rel_tol must be > 0"),
    (lambda: RatioPlateau(min_points=0), "min_points must be a positive int"),
    (lambda: make_stop_rule("nope"), "unknown stop rule 'nope'; choose one of"),
    (lambda: make_stop_rule(ESWMV(), window=3), "set them when building it"),
    (lambda: ESWMV().update(0, None, {}), "needs the output image"),
    (lambda: stop_iteration("es-emv", pd.DataFrame({"iteration": [0]})), "pass outputs="),
    (lambda: stop_iteration("paper", pd.DataFrame({"ratio": [1.0]})), "'iteration' column"),
    (lambda: PaperRule().load_state_dict(ESWMV().state_dict()), "not a state_dict of PaperRule"),
])
def test_bad_parameters_raise_one_line_naming_the_fix(build, match):
    with pytest.raises(ValueError, match=match) as caught:
        build()
    assert "\n" not in str(caught.value)


def test_iterations_must_increase_and_names_are_forgiving():
    rule = OracleRule()
    rule.update(3, None, {"psnr": 1.0})
    with pytest.raises(ValueError, match="iterations must increase, got 3 after 3"):
        rule.update(3, None, {"psnr": 1.0})
    assert isinstance(make_stop_rule("ES_WMV", window=7), ESWMV)
    assert make_stop_rule(rule) is rule
    assert sorted(STOP_RULES) == ["discrepancy", "es-emv", "es-wmv", "oracle", "paper",
                                 "ratio-plateau"]
    assert all(issubclass(kind, StopRule) for kind in STOP_RULES.values())
    with pytest.raises(TypeError, match="name or a StopRule"):
        make_stop_rule(3)


@pytest.mark.parametrize("size, options, match", [
    (40, dict(stop_rule="nope"), "unknown stop rule"),
    (40, dict(stop_rule="paper", metrics_every=0), "stop_rule='paper' needs the ratio meter"),
    (16, dict(stop_rule="ratio-plateau"), "needs an image of at least 35x35"),
])
def test_fit_refuses_a_rule_it_cannot_feed(size, options, match):
    clean = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    model = Decoder(out_channels=1, channels=4, stages=2, lipschitz_lambda=1.5)
    with pytest.raises(ValueError, match=match) as caught:
        fit(Denoise(clean=clean), model, iterations=3, device="cpu", progress=False, **options)
    assert "\n" not in str(caught.value)


# --- the discrepancy principle --------------------------------------------------------------------
def test_noise_estimate_of_white_noise_on_a_flat_image():
    g = torch.Generator().manual_seed(3)
    for sigma in (0.02, 0.1):
        noisy = 0.5 + sigma * torch.randn(1, 3, 96, 96, generator=g)
        assert abs(estimate_noise_sigma(noisy) / sigma - 1) < 0.05
    # smooth content cancels in the diagonal detail: a ramp plus noise reads as the noise alone
    ramp = torch.linspace(0, 1, 257)[None, None, :, None] * torch.linspace(0, 1, 255)
    noisy = ramp + 0.05 * torch.randn(1, 1, 257, 255, generator=g)
    assert abs(estimate_noise_sigma(noisy) / 0.05 - 1) < 0.05
    assert estimate_noise_sigma(ramp) < 1e-3
    with pytest.raises(ValueError, match="one image"):
        estimate_noise_sigma(torch.zeros(2, 1, 8, 8))


def test_discrepancy_fires_where_the_loss_first_falls_to_sigma_squared(astronaut40):
    task = Denoise(clean=astronaut40, seed=0)
    free = fit(task, _net(), iterations=60, device="cpu", progress=False, metrics_every=0)
    loss = free.history["loss"].to_numpy()
    sigma = float(np.sqrt(loss[40]))  # a level the loss reaches within the budget
    expected = int(np.nonzero(loss <= sigma ** 2)[0][0])
    stopped = fit(task, _net(), iterations=60, device="cpu", progress=False, metrics_every=0,
                  stop_rule=Discrepancy(noise_sigma=sigma))
    assert stopped.stop_iteration == stopped.stopped_at == expected
    pd.testing.assert_frame_equal(stopped.history, free.history.iloc[:expected + 1])
    # estimated: the rule's sigma is the observation's, and it fires at its own crossing
    auto = fit(task, _net(), iterations=60, device="cpu", progress=False,
               stop_rule="discrepancy")
    estimate = estimate_noise_sigma(task.observation)
    crossed = np.nonzero(loss <= estimate ** 2)[0]
    assert auto.stop_iteration == (int(crossed[0]) if len(crossed) else None)
    assert auto.stop_iteration == stop_iteration("discrepancy", free.history,
                                                 noise_sigma=estimate)


@pytest.mark.parametrize("rule, column", [(ESWMV(window=5, patience=8), "variance"),
                                          (ESEMV(alpha=0.2, patience=8, burn_in=5), "emv")])
def test_variance_replay_on_recorded_curves_equals_the_online_rule(astronaut40, rule, column):
    """The stopping study replays ES-WMV / ES-EMV on variance curves recorded during a fit."""
    task = Denoise(clean=astronaut40, seed=0)
    watcher = type(rule)(**{**rule.config(), "patience": 10 ** 9})
    curve = []

    def record(info):
        watcher.update(info["iteration"], info["output"])
        value = getattr(watcher, column)
        curve.append(math.nan if value is None else float(value))

    fit(task, _net(), iterations=80, device="cpu", progress=False, metrics_every=0,
        callbacks=[record])
    online = fit(task, _net(), iterations=80, device="cpu", progress=False, metrics_every=0,
                 stop_rule=rule)
    replayed = replay_variance(range(len(curve)), curve, patience=rule.patience,
                               burn_in=getattr(rule, "burn_in", 0))
    assert replayed == (online.stop_iteration, online.stopped_at)
    assert online.stopped_at is not None
