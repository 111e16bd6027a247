"""The GPU scripts of issues 18 and 19 in ``--dry-run``: the same steps at tiny sizes on the CPU.

``benchmarks/gpu_check.sh`` and ``benchmarks/paper_scale.sh`` are meant for a GPU machine this
suite never has; their dry runs check that every step runs and writes what the GPU run would
write, with the settings recorded. The paper's images are read when ``$DIPSPEC_DATA_MIRROR``
holds them (``conftest.py``); otherwise the figures run on stand-ins and the table is skipped,
and the tests check that this is said and recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
LAMBDA_RUNS = ["λ = 1", "λ = 2", "λ = 3", "plain DIP"]
PNG = b"\x89PNG\r\n\x1a\n"


def _mirror() -> bool:
    mirror = os.environ.get("DIPSPEC_DATA_MIRROR")
    return bool(mirror) and (Path(mirror) / "denoising").is_dir()


def _dry_run(script: str, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, OMP_NUM_THREADS="1",
               MAX_SEEDS="2")  # the seed choice is exercised; a third seed adds only time
    done = subprocess.run(["bash", str(BENCHMARKS / script), "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def gpu_check(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("gpu_check")
    return out, _dry_run("gpu_check.sh", out).stdout


def test_gpu_check_writes_what_the_device_brings_back(gpu_check):
    out, _ = gpu_check
    names = {p.name for p in out.iterdir()}
    assert names == {"results-cuda.json", "lipschitz_control.png", "lipschitz_control.json",
                     "lipschitz_control_histories.csv", "summary.txt", "gpu_check.log"}
    assert len(names) <= 8  # the device tool brings back at most 8 files
    assert (out / "lipschitz_control.png").read_bytes()[:8] == PNG
    bench = json.loads((out / "results-cuda.json").read_text())
    assert bench["device_type"] == "cpu"
    assert {"bare", "full", "naive", "sigma_exact"} <= set(bench["sizes"]["64"]["steps"])
    assert bench["batched"]["64"]["fit_many"]["speedup"] > 0
    assert "64: full / bare" in bench["targets"]


def test_gpu_check_lambda_provenance_records_the_settings(gpu_check):
    out, _ = gpu_check
    prov = json.loads((out / "lipschitz_control.json").read_text())
    assert prov["figure"] == "lipschitz_control" and prov["preset"] == "paper"
    assert prov["lambdas"] == [1.0, 2.0, 3.0]
    assert (prov["image_size"], prov["channels"], prov["metrics_every"]) == ([64, 64], 8, 2)
    assert prov["iterations"] == prov["planned_iterations"] == 20
    assert (prov["device"], prov["precision"], prov["tf32"]["mode"]) == ("cpu", "fp32", "default")
    assert prov["dry_run"] is True and prov["interrupted"] is None
    assert list(prov["summary"]) == LAMBDA_RUNS
    assert set(prov["paper_readouts"]) == {"λ = 1", "λ = 2", "λ = 3"}
    assert len(prov["findings"]) == 5
    assert all(isinstance(value, bool) for value in prov["findings"].values())
    if _mirror():
        assert prov["image_fallbacks"] is None
    else:  # no paper image: the stand-in is named, never passed off as Peppers
        assert prov["image_fallbacks"] == {"denoising/image_Peppers512rgb.png": "coffee"}
    histories = pd.read_csv(out / "lipschitz_control_histories.csv")
    assert sorted(set(histories["run"])) == sorted(LAMBDA_RUNS)
    for _, history in histories.groupby("run"):
        assert list(history["iteration"]) == list(range(20))
        assert history["fbc_1"].notna().sum() == 10  # measured every 2nd iteration


def test_gpu_check_summary_names_each_lambda_and_step(gpu_check):
    out, stdout = gpu_check
    summary = (out / "summary.txt").read_text()
    assert summary in (out / "gpu_check.log").read_text()
    assert summary.strip() in stdout
    for label in LAMBDA_RUNS:
        assert f"{label}: peak " in summary
    assert "paper: ≈26 dB flat" in summary
    for step in ("tests", "benchmark", "lambda"):
        assert any(line.split()[:2] == [step, "ok"] for line in summary.splitlines())
    assert "compile    skipped" in summary and "CUDA only" in summary
    assert "64: full / bare" in summary
    tests_line = next(line for line in summary.splitlines() if line.startswith("CUDA tests:"))
    assert "skipped" in tests_line or "passed" in tests_line


@pytest.fixture(scope="module")
def paper_scale(tmp_path_factory) -> tuple[Path, dict, Path]:
    out = tmp_path_factory.mktemp("paper_scale")
    _dry_run("paper_scale.sh", out)
    unpacked = out.parent / f"{out.name}_unpacked"
    with tarfile.open(out / "paper_scale.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    return out, json.loads((out / "plan.json").read_text()), unpacked


def test_paper_scale_plans_from_measured_steps(paper_scale):
    out, plan, _ = paper_scale
    assert {p.name for p in out.iterdir()} == {"plan.json", "summary.txt", "paper_scale.log",
                                               "paper_scale.tar.gz"}
    assert plan["dry_run"] is True and plan["device"] == "cpu"
    for figure in ("automatic_stop", "gaussian_control", "fbc_noise"):
        cost = plan["calibration"][figure]
        assert cost["per_step_s"] > 0 and cost["iterations"] == 20 and cost["members"] == 3
        assert plan["decisions"][figure] == "run"
        assert plan["parts"][figure]["exit"] == 0, plan["parts"][figure]
    summary = (out / "summary.txt").read_text()
    for part in plan["decisions"]:
        assert part in summary
    if _mirror():
        assert 1 <= plan["seeds"] <= 3
        assert [plan["decisions"][f"table: {a}"] for a in
                ("DIP", "DIP Linear-128", "DIP Linear-2048", "ReLUNet")] == ["run"] * 4
        assert plan["parts"]["table"]["exit"] == 0
    else:
        assert plan["decisions"]["table"].startswith("skipped: the paper's denoising images")


def test_paper_scale_figures_and_table_record_their_settings(paper_scale):
    _, plan, unpacked = paper_scale
    expected = {"automatic_stop": ["Peppers", "F16", "Lena"], "fbc_noise": ["Peppers", "F16",
                                                                           "Lena"],
                "gaussian_control": ["σ = 0", "σ = 0.5", "σ = 1"]}
    for figure, runs in expected.items():
        prov = json.loads((unpacked / "figures" / f"{figure}.json").read_text())
        assert (unpacked / "figures" / f"{figure}.png").read_bytes()[:8] == PNG
        assert prov["figure"] == figure and prov["preset"] == "paper" and prov["dry_run"]
        assert prov["iterations"] == prov["planned_iterations"] == 20
        assert (prov["image_size"], prov["channels"]) == ([64, 64], 8)
        assert list(prov["summary"]) == runs
        histories = pd.read_csv(unpacked / "figures" / f"{figure}_histories.csv")
        assert sorted(set(histories["run"])) == sorted(runs)
    stop = json.loads((unpacked / "figures" / "automatic_stop.json").read_text())
    assert (stop["stop_window"], stop["stop_eps"]) == (100, 0.01)
    assert set(stop["stop_table"]) == {"Peppers", "F16", "Lena"}
    sigma = json.loads((unpacked / "figures" / "gaussian_control.json").read_text())
    assert sigma["sigmas"] == [0.0, 0.5, 1.0] and sigma["lipschitz_lambda"] == 2.0
    if not _mirror():
        assert not (unpacked / "table").exists()
        return
    rows = pd.read_csv(unpacked / "table" / "architectures.csv")
    counts = rows.groupby("architecture")["iterations"].first().to_dict()
    assert counts == {"DIP": 4, "DIP Linear-128": 3, "DIP Linear-2048": 3, "ReLUNet": 6}
    assert sorted(set(rows["seed"])) == list(range(plan["seeds"]))
    table = json.loads((unpacked / "table" / "architectures.json").read_text())
    assert (table["factor"], table["dip_channels"]) == (32, 8)


@pytest.fixture
def planner(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import paper_scale

    return paper_scale


def test_plan_takes_parts_in_priority_order_and_says_why_one_is_skipped(planner):
    columns, figures = {"DIP": 10.0, "ReLUNet": 50.0}, {"automatic_stop": 20.0, "fbc_noise": 10.0}
    seeds, decisions = planner.plan(100, columns, figures, overhead=5, max_seeds=3)
    assert seeds == 1  # no seed count leaves room for everything
    assert decisions == {"table: DIP": "run", "table: ReLUNet": "run",
                         "automatic_stop": "skipped: needs ~28 s, 26 s left",
                         "fbc_noise": "run"}
    # room for everything: the most seeds that still leave it
    assert planner.plan(1000, columns, figures, overhead=5, max_seeds=3)[0] == 3
    seeds, decisions = planner.plan(250, columns, figures, overhead=5, max_seeds=3)
    assert seeds == 2 and set(decisions.values()) == {"run"}


@pytest.fixture
def reader(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_summary

    return gpu_summary


def test_lambda_precision_follows_the_accuracy_rows(reader):
    def bench(**gaps):
        rows = {f"full_{flag}": {"psnr_gap_db": gap, "accurate": gap <= 0.05}
                for flag, gap in gaps.items()}
        return {"sizes": {"256": {"gpu_flags": rows}, "512": {"gpu_flags": rows}}}

    assert reader.accuracy(bench(bf16=0.01, tf32=0.2), "bf16")[0] is True
    assert reader.accuracy(bench(bf16=0.01, tf32=0.2), "tf32")[0] is False
    mixed = bench(bf16=0.01)
    mixed["sizes"]["512"]["gpu_flags"]["full_bf16"] = {"psnr_gap_db": 0.3, "accurate": False}
    passed, why = reader.accuracy(mixed, "bf16")
    assert not passed and "0.300 dB at 512²" in why and "failed" in why
    assert reader.accuracy({"sizes": {"64": {}}}, "bf16") == (
        False, "bf16: no accuracy row (not a CUDA run, or the benchmark stopped early)")
