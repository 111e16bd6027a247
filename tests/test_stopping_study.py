"""The stopping study (issue 15): every rule judged on recorded trajectories, no fit needed.

Synthetic trajectories whose every stop is known by construction: the PSNR peaks at 300 and
decays, the loss reaches the stored noise variance at 280, the ratio is flat (the paper's rule
fires at 2n + 1 = 201), the windowed variance is lowest at 250 (ES-WMV detects 250 and fires a
patience later, 1250).
"""

from __future__ import annotations

import numpy as np
import pytest

from dipspec.experiments import stopping_eval, stopping_study
from dipspec.experiments.chakrabarty.tables import FitJournal
from dipspec.experiments.trajectories import NOISE_ESTIMATE, write_trajectory
from dipspec.fitting.stops import RECOMMENDED

BUDGET, SIGMA = 3000, 0.1


def _trajectory(peak=300, crossing=280, quiet=250):
    t = np.arange(BUDGET)
    psnr = 28.0 - 4.0 * ((t - peak) / 1500.0) ** 2 - 0.002 * np.maximum(t - peak, 0)
    loss = SIGMA ** 2 * (1 + 0.5 * (crossing - t) / crossing)  # = σ² exactly at `crossing`
    wmv = np.where(t < 99, np.nan, 1.0 + np.abs(t - quiet) / 100.0)
    arrays = {"iteration": t.astype(np.int32), "psnr": psnr, "loss": loss,
              "ratio": np.full(BUDGET, 4.0), "wmv": wmv, "emv": wmv.copy()}
    for band in range(1, 6):
        arrays[f"fbc_{band}"] = np.zeros(BUDGET)
    for name in ("blurriness", "sharpness"):
        arrays[name] = np.ones(BUDGET)
    arrays = {k: np.asarray(v, dtype=np.float32 if k != "iteration" else np.int32)
              for k, v in arrays.items()}
    arrays[NOISE_ESTIMATE] = np.float64(SIGMA)
    return arrays


@pytest.fixture()
def study(tmp_path):
    journal = FitJournal(tmp_path / "stopping.journal.jsonl")
    for task in ("denoise", "deblock"):
        name = f"trajectories/{task}.npz"
        write_trajectory(tmp_path / name, _trajectory())
        journal.add({"task": task, "image": "Baboon", "seed": 0, "lambda": "plain",
                     "iterations": BUDGET, "preset": "quick"},
                    {"trajectory": name, "commit": "x", "machine": "y"})
    return stopping_eval.fits([tmp_path])


def test_every_rule_stops_where_the_trajectory_says(study):
    rows = stopping_eval.evaluate(study, progress=False)
    denoise = rows[rows["task"] == "denoise"].set_index("rule")
    psnr = _trajectory()["psnr"]
    expected = {"paper": (201, 202), "discrepancy": (280, 281), "es-wmv": (250, 1251),
                "oracle": (300, BUDGET)}
    for rule, (detected, ended) in expected.items():
        row = denoise.loc[rule]
        assert (row["stop_iteration"], row["ended_at"]) == (detected, ended), rule
        assert row["stop_psnr"] == pytest.approx(float(psnr[detected]), abs=1e-5)
        assert row["gap_to_peak_db"] == pytest.approx(float(psnr[300] - psnr[detected]),
                                                      abs=1e-5)
        assert row["saved"] == pytest.approx(1 - ended / BUDGET)
    assert denoise.loc["es-emv", "stop_iteration"] == 250  # compared after its burn-in of 100
    assert bool(denoise.loc["discrepancy", "peaked"])  # the peak lies in the first half
    assert denoise.loc["discrepancy", "split"] == "design"  # Baboon is a design image
    # the recommendation is, per task, the row of the rule it names
    for task in ("denoise", "deblock"):
        mine = rows[rows["task"] == task].set_index("rule")
        assert mine.loc["recommended"].equals(mine.loc[RECOMMENDED[task]].rename("recommended"))


def test_a_rule_that_never_fires_returns_the_final_iterate(study):
    frame = _trajectory(crossing=10 ** 6)  # the loss never reaches σ²
    write_trajectory(study["trajectory"].iloc[0], frame)
    rows = stopping_eval.evaluate(study.iloc[:1], rules=["discrepancy"], progress=False)
    row = rows.iloc[0]
    assert not row["fired"] and row["saved"] == 0.0
    assert row["stop_psnr"] == pytest.approx(float(frame["psnr"][-1]))
    summary = stopping_eval.summary(rows)
    assert summary.loc[0, "fire_rate"] == 0.0
    assert summary.loc[0, "worst_gap_db"] == pytest.approx(float(frame["psnr"][300]
                                                                 - frame["psnr"][-1]), abs=1e-3)


def test_a_fit_is_design_only_where_its_tasks_rule_was_chosen_on_its_image(tmp_path):
    journal = FitJournal(tmp_path / "stopping.journal.jsonl")
    cases = {("denoise", "Baboon"): "design", ("denoise", "kodim01"): "held-out",
             ("deblock", "barbara"): "design", ("deblock", "baboon"): "held-out",
             ("deblock", "Baboon"): "held-out", ("super_resolve", "House"): "design",
             ("super_resolve", "kodim01"): "held-out", ("inpaint", "couple"): "design",
             ("inpaint", "house"): "held-out"}
    for k, (task, image) in enumerate(cases):
        name = f"trajectories/{k}.npz"
        write_trajectory(tmp_path / name, _trajectory())
        journal.add({"task": task, "image": image, "seed": 0, "lambda": "plain",
                     "iterations": BUDGET, "preset": "quick"},
                    {"trajectory": name, "commit": "x", "machine": "y"})
    table = stopping_eval.fits([tmp_path])
    got = {(task, image): split for task, image, split
           in zip(table["task"], table["image"], table["split"])}
    assert got == cases


def test_the_held_out_images_are_new_to_each_task():
    for kind, held_out in stopping_study.HELD_OUT_TASKS.items():
        short = [stopping_study.short_name(image) for image in held_out]
        assert {stopping_study.study_image(kind, name) for name in short} == set(held_out)
        assert len(held_out) == 3
        assert not ({n.lower() for n in stopping_eval.DESIGN_SPLIT[kind]}
                    & {n.lower() for n in short})
    with pytest.raises(ValueError, match="not an image of the deblock study"):
        stopping_study.study_image("deblock", "kodim01")


def test_study_tasks_are_the_papers_degradations():
    import torch

    from dipspec.presets import QUICK

    clean = "astronaut"
    shapes = {kind: stopping_study.make_task(kind, clean, QUICK.with_(image_size=32), 0)
              for kind in stopping_study.STUDY_TASKS}
    assert shapes["super_resolve"].observation.shape[-1] == 8  # ×4
    assert shapes["inpaint"].output_size == (32, 32)
    assert torch.equal(shapes["deblock"].observation, shapes["deblock"].observation.clamp(0, 1))
    with pytest.raises(ValueError, match="unknown study task"):
        stopping_study.make_task("blur", clean, QUICK, 0)
