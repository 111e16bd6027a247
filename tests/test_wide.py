"""The wide figures (issue 14): the σ sweep journalled and resumable, the figures and findings
drawn from recorded fits (the ladder's and the sweep's) without fitting again."""

import json

import numpy as np
import pytest

from dipspec.experiments import ladder, trajectories, wide
from dipspec.experiments.chakrabarty.tables import FitJournal
from dipspec.presets import WIDE


@pytest.fixture
def small_wide(monkeypatch):
    """The wide preset shrunk to a test's size (the same code paths, seconds not hours)."""
    small = WIDE.with_(image_size=40, channels=4, iterations=6)
    monkeypatch.setattr(wide, "resolve", lambda name: small)
    return small


def test_the_sigma_sweep_is_journalled_and_a_rerun_fits_nothing(tmp_path, small_wide,
                                                                 monkeypatch):
    path = wide.run_sigma_sweep(tmp_path, image="astronaut", device="cpu", progress=False)
    rows = trajectories.journal_rows(path)
    assert sorted(rows["gaussian_sigma"]) == [0.0, 0.5, 1.0]
    assert (rows["upsample"] == "gaussian").all() and (rows["lambda"] == "2").all()
    assert set(rows["trajectory"]) == {f"trajectories/astronaut_40_s0_gaussian_sigma{s}.npz"
                                       for s in ("0", "0.5", "1")}
    # different σ give different fits (the option reached the decoder)
    curves = [trajectories.load_trajectory(tmp_path / t)["psnr"].to_numpy()
              for t in rows.sort_values("gaussian_sigma")["trajectory"]]
    assert len(curves[0]) == 6 and not np.allclose(curves[0], curves[2])

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished fit ran again")

    monkeypatch.setattr(trajectories, "fit_many", must_not_run)
    wide.run_sigma_sweep(tmp_path, image="astronaut", device="cpu", progress=False)


def _history(n, psnr, bands, ratio):
    return {"iteration": np.arange(n, dtype=np.int32), "psnr": psnr, "loss": np.zeros(n),
            **{f"fbc_{k + 1}": bands[k] for k in range(5)}, "blurriness": ratio,
            "sharpness": np.ones(n), "ratio": ratio, "wmv": np.zeros(n), "emv": np.zeros(n)}


def _record(journal, folder, key, name, psnr, high_end, stop=150):
    """A fake finished fit: PSNR as given; bands 1-4 rise and saturate, band 5 ends at
    ``high_end``; a ratio that settles (the paper's rule fires)."""
    n = len(psnr)
    t = np.arange(n) / n
    bands = [np.minimum(1.0, (6 - k) / 5 * 4 * t) for k in range(4)]
    bands.append(high_end * t)
    ratio = np.where(np.arange(n) < 100, 1.0 + np.arange(n) / 100, 2.0)
    trajectories.write_trajectory(folder / "trajectories" / f"{name}.npz",
                                  _history(n, psnr, bands, ratio))
    journal.add(key, {"trajectory": f"trajectories/{name}.npz", "stop_iteration": stop,
                      "wall_time_s": 1.0})


def test_figures_and_findings_come_from_the_recorded_fits(tmp_path, small_wide):
    n = 400
    t = np.arange(n)
    rise = 30 * (1 - np.exp(-t / 40))
    decay = rise - np.clip(t - 150, 0, None) * 0.02  # peaks, then loses 5 dB
    curves = {1.0: 26 * (1 - np.exp(-t / 40)), 2.0: rise, 3.0: decay, None: decay - 0.1}
    ladder_out, sweep_out = tmp_path / "ladder", tmp_path / "wide"
    lj = FitJournal(ladder_out / "ladder.journal.jsonl")
    for lam, psnr in curves.items():
        _record(lj, ladder_out, ladder.ladder_key("Peppers", 40, lam, 4),
                f"Peppers_{trajectories.label(lam)}", psnr,
                high_end={1.0: 0.2, 2.0: 0.4, 3.0: 0.7, None: 0.8}[lam])
    sj = FitJournal(sweep_out / "wide.journal.jsonl")
    for sigma, psnr in ((0.0, decay), (0.5, rise)):  # σ = 1 has not finished
        _record(sj, sweep_out, wide.sigma_key(sigma), f"sigma{sigma:g}", psnr, 0.5)

    figures, missing = wide.recorded_figures(ladder_out, sweep_out, iterations=6)
    assert set(figures) == {"fbc_noise", "lipschitz_control", "automatic_stop"}
    assert missing == {"fbc_noise": ["F16", "Baboon"], "gaussian_control": ["σ = 1"],
                       "automatic_stop": ["F16", "Baboon"]}
    assert list(figures["lipschitz_control"]) == ["λ = 1", "λ = 2", "λ = 3", "plain DIP"]

    found = wide.findings(figures)["lipschitz_control"]
    assert found["the right λ ends within 0.5 dB of its peak"]
    assert found["the smallest λ never reaches plain DIP's peak (over-smoothing)"]
    assert found["the largest λ decays like plain DIP (> 1 dB below its peak)"]
    assert found["the highest band at the end grows with λ"]
    assert found["the right λ ends > 1 dB above plain DIP"]

    import matplotlib

    matplotlib.use("Agg", force=True)
    from dipspec.viz import plots, studies

    for name, runs in figures.items():
        fig = studies.figure_wide(name, runs, wide.smoothing())
        plots.save_figure(fig, name, wide.figure_provenance(name, runs), folder=tmp_path)
    # the λ figure: the PSNR panel, then one FBC panel per run, as notebook 03's
    assert len(studies.figure_wide("lipschitz_control", figures["lipschitz_control"], 10).axes
               ) == 5
    meta = json.loads((tmp_path / "lipschitz_control.json").read_text())
    assert meta["preset"] == "wide" and meta["lambdas"] == [1.0, 2.0, 3.0]
    assert meta["sources"][1].endswith("Peppers_2.npz") and meta["iterations"] == n

    verdicts = wide.write_report(figures, missing, tmp_path / "wide")
    text = (tmp_path / "wide.md").read_text()
    assert "gaussian_control" in text and "σ = 1" in text  # the pending figure is named
    assert json.loads((tmp_path / "wide.json").read_text())["findings"] == verdicts


def test_a_wrong_ladder_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert wide.main(["--report-only", "--ladder", str(tmp_path / "nowhere"),
                      "--table", str(tmp_path / "wide")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no ladder journal" in err and "nowhere" in err
    assert not (tmp_path / "wide.md").exists()  # no partial report
