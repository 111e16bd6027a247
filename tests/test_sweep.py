"""``dipspec sweep``: a spec's fits, batched, journalled and resumable, locally or on Ray.

- the same 12-fit spec gives the same table on the local engine and on a local Ray (float64,
  to 1e-9 relative; in fact bit for bit: the same batches run the same code);
- a sweep SIGKILLed in the middle of a batch, run again, runs only the missing fits and ends
  with the table of an uninterrupted run, float32 bit for bit (a batch is journalled whole,
  so the missing fits run with the same partners);
- a changed spec runs only its new fits; compatible fits batch, others do not;
- bad specs fail before any fit, with one line naming the entry (exit 2), writing nothing;
- the shipped architecture spec reproduces the committed table's numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from reference import assert_reproduces_committed

from dipspec.cli import main
from dipspec.experiments.sweep import (
    architecture_rows,
    engines,
    load_spec,
    plan,
    read_history,
    read_table,
    run_sweep,
    shipped_spec,
)

ROOT = Path(__file__).resolve().parents[1]
#: Columns that differ between two runs of the same fits: the clock.
TIMING = ["wall_time_s"]

pytestmark = [pytest.mark.filterwarnings("ignore:.*without λ or σ control"),
              pytest.mark.usefixtures("one_thread")]


def twelve(dtype: str = "float64", seeds=(0, 1)) -> str:
    """8 decoders (2 images × λ on/off × 2 seeds: two batches of 4), 2 DIP and 2 ReLUNet fits
    (one at a time): 12 fits, 6 batches, tiny (16 px, width 4, 12 iterations)."""
    return textwrap.dedent(f"""
        [sweep]
        name = "twelve"
        max_batch = 4

        [defaults]
        preset = "quick"
        image_size = 16
        iterations = 12
        metrics_every = 0
        dtype = "{dtype}"

        [grid]
        image = ["camera", "astronaut"]
        lipschitz_lambda = [1.2, "off"]
        channels = 4
        seed = {json.dumps(list(seeds))}
        stop_rule = "discrepancy"

        [[configs]]
        image = "camera"
        model = "DIP"
        channels = 4
        backtracking = false
        stop_rule = "oracle"

        [[configs]]
        image = "camera"
        model = "skipnet"
        channels = 4
        seed = 1
        backtracking = false

        [[configs]]
        image = "coffee"
        model = "ReLUNet"
        log_every = 3

        [[configs]]
        image = "coffee"
        model = "ReLUNet"
        seed = 1
        """)


def write(folder: Path, text: str, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """The size of every batch the local engine runs."""
    sizes = []
    real = engines.run_batch

    def run_batch(configs, images, device="auto"):
        sizes.append(len(configs))
        return real(configs, images, device)

    monkeypatch.setattr(engines, "run_batch", run_batch)
    return sizes


def same_tables(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 0.0) -> None:
    a, b = a.drop(columns=TIMING), b.drop(columns=TIMING)
    if rtol:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=rtol, atol=0)
    else:
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_twelve_fits_give_one_table_on_local_and_ray(tmp_path, counted):
    ray = pytest.importorskip("ray")
    spec = write(tmp_path, twelve("float64"))
    local = run_sweep(spec, tmp_path / "local", progress=False, echo=lambda _: None)
    assert (local.total, local.ran, local.batches, sorted(counted)) == (12, 12, 6,
                                                                        [1, 1, 1, 1, 4, 4])
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(spec, tmp_path / "ray", engine="ray", progress=False,
                           echo=lambda _: None)
    finally:
        ray.shutdown()
        for sig, handler in handlers.items():  # Ray may leave Ctrl-C ignored here
            signal.signal(sig, handler)
    assert remote.ran == 12 and len(counted) == 6  # the Ray tasks ran outside this process
    a, b = read_table(tmp_path / "local"), read_table(tmp_path / "ray")
    assert len(a) == 12 and a["peak_psnr"].notna().all()
    assert (a["batch"].tolist() == [4] * 8 + [1] * 4) and a["stop_iteration"].notna().any()
    same_tables(a, b, rtol=1e-9)
    for (_, row_a), (_, row_b) in zip(a.iterrows(), b.iterrows()):
        pd.testing.assert_frame_equal(read_history(tmp_path / "local", row_a),
                                      read_history(tmp_path / "ray", row_b),
                                      check_exact=False, rtol=1e-9, atol=0)


_KILLER = """
import os, signal, sys
from dipspec.experiments.sweep import runner
real, calls = runner.fit_many, []

def fit_many(*args, **kwargs):  # SIGKILL in the middle of the second batched group
    calls.append(1)
    if len(calls) == 2:
        kwargs["callbacks"] = [lambda info: info["iteration"] == 5
                               and os.kill(os.getpid(), signal.SIGKILL)]
    return real(*args, **kwargs)

runner.fit_many = fit_many
from dipspec.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_sweep_runs_only_its_missing_fits(tmp_path, counted, capsys):
    spec = write(tmp_path, twelve("float32"))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    assert sum(counted) == 12
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIPSPEC_PROGRESS": "0"}
    killed = subprocess.run([sys.executable, "-c", _KILLER, "sweep", str(spec), "--out",
                             str(tmp_path / "killed"), "--quiet"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = (tmp_path / "killed" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 4  # the first batch; the second died in flight
    assert not (tmp_path / "killed" / "table.csv").exists()

    counted.clear()
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(tmp_path / "killed"), "--quiet"]) == 0
    assert sorted(counted) == [1, 1, 1, 1, 4]  # 8 missing fits: the killed batch and 4 singles
    assert "8 run now in 5 batch(es)" in capsys.readouterr().out
    same_tables(read_table(tmp_path / "whole"), read_table(tmp_path / "killed"))
    counted.clear()
    assert main(["sweep", str(spec), "--out", str(tmp_path / "killed"), "--quiet"]) == 0
    assert counted == []  # everything is journalled now


def test_a_changed_spec_runs_only_its_new_fits(tmp_path, counted, capsys):
    spec = write(tmp_path, twelve("float32", seeds=[0]))
    out = tmp_path / "out"
    report = run_sweep(spec, out, progress=True, echo=lambda _: None)
    assert report.total == 8 and report.ran == 8
    assert "8/8" in capsys.readouterr().err  # the progress bar counts fits
    counted.clear()
    write(tmp_path, twelve("float32", seeds=[0, 2]))  # seed 2 of each image and λ: 4 new fits
    report = run_sweep(spec, out, progress=False, echo=lambda _: None)
    # the new fits batch among themselves (a batch of 2 per image), the old ones are not rerun
    assert (report.total, report.reused, report.ran, sorted(counted)) == (12, 8, 4, [2, 2])
    assert "4 run now" in report.summary() and "8 from the journal" in report.summary()
    assert len(read_table(out)) == 12
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["fits_run"] for r in runs] == [8, 4] and runs[-1]["state"] == "complete"


def test_compatible_fits_batch_and_others_do_not(tmp_path):
    spec = write(tmp_path, textwrap.dedent("""
        [sweep]
        max_batch = 3
        [defaults]
        preset = "quick"
        image_size = 16
        channels = 4
        iterations = 5
        [grid]
        image = ["astronaut", "coffee", "camera"]
        lipschitz_lambda = [1.0, "off"]
        [[configs]]
        image = "astronaut"
        upsample = "gaussian"
        gaussian_sigma = 0.5
        [[configs]]
        image = "astronaut"
        gaussian_sigma = [0.1, 0.1, 0.1, 0.5, 0.5]
        [[configs]]
        image = "astronaut"
        channels = 8
        [[configs]]
        image = "astronaut"
        iterations = 6
        [[configs]]
        image = "astronaut"
        model = "DIP"
        [[configs]]
        image = "astronaut"
        lipschitz_lambda = 1.0
        """))
    sweep = load_spec(spec)
    assert len(sweep.fits) == 11 and sweep.duplicates == 1  # the last is grid's first
    batches = plan(sweep.fits, sweep.max_batch)
    entries = [[f.entry.split(" (")[0] + (f.config["image"][:3]) for f in b.fits]
               for b in batches]
    # colour images of one size: 4 fits, cut at 3; the grey camera apart; σ may differ
    assert entries == [["gridast", "gridast", "gridcof"], ["gridcof"], ["gridcam", "gridcam"],
                       ["configs[0]ast", "configs[1]ast"], ["configs[2]ast"],
                       ["configs[3]ast"], ["configs[4]ast"]]
    done = {batches[0].fits[0].fit_id}
    assert [len(b.fits) for b in plan(sweep.fits, 3, done)][:2] == [2, 1]


BAD = [  # (spec text, what the one line must say)
    ('[grid]\nimage = "camera"\nlamda = 1.2\n', "grid (image=\"camera\", lamda=1.2): unknown "
     "key 'lamda' (did you mean 'lipschitz_lambda'?)"),
    ('[[configs]]\nimage = "camera"\n[[configs]]\nimage = "camera"\niterations = 0\n',
     "configs[1]: iterations must be >= 1, got 0"),
    ('[[configs]]\nimage = "camera"\nupsample = "bilinear"\ngaussian_sigma = 0.5\n',
     "configs[0]: gaussian_sigma needs upsample = 'gaussian'"),
    ('[[configs]]\nimage = "camera"\nmodel = "ReLUNet"\nlipschitz_lambda = 1.2\n',
     "configs[0]: lipschitz_lambda applies to the decoder and convnet, not ReLUNet"),
    ('[[configs]]\nimage = "camera"\ntask = "deblock"\nnoise_sigma = 25\n',
     "configs[0]: noise_sigma applies to task denoise, not deblock"),
    ('[[configs]]\nimage = "camera"\nstop_rule = "paper"\nmetrics_every = 0\n',
     "configs[0]: stop_rule paper reads the blur/sharpness ratio, but metrics_every is 0"),
    ('[[configs]]\nimage = "camera"\nimage_size = 24\nstop_rule = "paper"\n',
     "configs[0]: stop_rule paper needs the blur/sharpness ratio, defined from 35x35"),
    ('[[configs]]\nimage = "camera"\nprecision = "bf16"\ndtype = "float64"\n',
     "configs[0]: precision bf16 runs beside float32 weights"),
    ('[[configs]]\nimage = "no-such-image"\n', "configs[0]: image 'no-such-image': unknown "
     "image"),
    ('[[configs]]\nimage = "camera"\nmodel = "transformer"\n', "unknown model 'transformer'"),
    ('[[configs]]\nimage = "camera"\nstop_rule = "early"\n', "configs[0]: stop_rule must be "
     "one of"),
    ('[[configs]]\nimage = "camera"\n[[configs]]\nseed = 1\n', "configs[1]: no image"),
    ('[sweeps]\nname = "x"\n', "unknown section [sweeps]"),
    ('[sweep]\nbatch = 4\n[grid]\nimage = "camera"\n', "[sweep] unknown option 'batch'"),
    ('[grid]\nimage = []\n', "grid: image has no values"),
    ('[defaults]\nimage = "camera"\n', "no configurations"),
    ('[grid\nimage = "camera"\n', "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m[:40] for _, m in BAD])
def test_a_bad_spec_is_one_line_before_any_fit(tmp_path, counted, capsys, text, message):
    spec = write(tmp_path, "[defaults]\npreset = \"quick\"\n" + text
                 if "[defaults]" not in text and "[sweeps]" not in text else text)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith("dipspec sweep: error: ") and str(spec) in err
    assert counted == [] and not out.exists()


def test_a_missing_paper_image_is_refused_outside_the_quick_preset(tmp_path, fake_paper_data,
                                                                   capsys):
    spec = write(tmp_path, '[[configs]]\nimage = "Peppers"\npreset = "paper"\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "configs[0]: image 'Peppers'" in err


def test_yaml_specs_and_their_absence(tmp_path, monkeypatch, capsys):
    pytest.importorskip("yaml")
    spec = write(tmp_path, "defaults: {preset: quick, image_size: 16}\n"
                           "grid: {image: camera, seed: [0, 1]}\n", "spec.yaml")
    assert [f.config["seed"] for f in load_spec(spec).fits] == [0, 1]
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "a YAML spec needs PyYAML, which is not installed" in capsys.readouterr().err


def test_the_output_folder_holds_only_a_sweep(tmp_path, capsys, monkeypatch):
    spec = write(tmp_path, twelve())
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert main(["sweep", str(spec), "--out", str(stranger)]) == 2
    assert "holds files dipspec did not write" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / ".dipspec-output").write_text('{"written_by": "dipspec", "files": []}')
    assert main(["sweep", str(spec), "--out", str(run)]) == 2
    assert "not of a sweep" in capsys.readouterr().err
    assert (stranger / "notes.txt").read_text() == "mine"
    assert main(["sweep", str(spec), "--address", "auto"]) == 2
    assert "add --engine ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", str(spec), "--engine", "ray", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install -e '.[ray]'" in err


def test_the_shipped_specs_parse():
    assert shipped_spec("architectures") is not None and shipped_spec("nothing") is None
    example = shipped_spec("example")
    readme = (ROOT / "README.md").read_text()
    assert example.read_text().strip() in readme  # the README shows the shipped example


@pytest.mark.skipif(not os.environ.get("DIPSPEC_DATA_MIRROR"), reason="needs the paper images")
def test_the_architecture_spec_reproduces_the_committed_table(tmp_path):
    """DIP Linear-128 on House, seed 0, from the shipped spec: the committed numbers (exactly on
    the CPU that made them, within ``CROSS_CPU_PSNR_DB`` on another).
    (The other columns take minutes; the report of issue 17 has the four of them.)"""
    report = run_sweep("architectures", tmp_path, progress=False, echo=lambda _: None,
                       only={"image": ["image_House256rgb"], "seed": ["0"],
                             "model": ["linear-128"]})
    assert report.ran == 1
    rows = architecture_rows(read_table(tmp_path))
    committed = pd.read_csv(ROOT / "results" / "architectures.csv")
    keys = ["image", "architecture", "seed", "iterations", "lr"]
    both = rows.merge(committed, on=keys, suffixes=("", "_committed"))
    assert len(both) == 1
    assert_reproduces_committed(both)
