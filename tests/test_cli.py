"""The ``dipspec`` command: an end-to-end run and one-line errors with exit code 2."""

import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from dipspec.cli import main


def test_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "result"
    code = main(["run", "denoise", "--image", "camera", "--size", "40", "--iterations", "30",
                 "--preset", "quick", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"output.png", "observation.png", "best.png",
                                               "history.csv", "psnr.png"}
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 30 and {"iteration", "loss", "psnr", "fbc_1", "ratio"} <= set(history)
    assert Image.open(out / "output.png").size == (40, 40)
    assert str(out.resolve()) in capsys.readouterr().out


def test_run_observed_photo_without_clean(tmp_path):
    photo = tmp_path / "noisy.png"
    Image.new("RGB", (37, 41), (120, 60, 30)).save(photo)
    out = tmp_path / "result"
    code = main(["run", "denoise", "--image", str(photo), "--observed", "--iterations", "3",
                 "--lambda", "off", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    assert Image.open(out / "output.png").size == (37, 41)
    assert not (out / "best.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "no/such/file.png"], "no/such/file.png"),
        (["--lambda", "-1"], "--lambda must be"),
        (["--lambda", "abc"], "--lambda must be"),
        (["--sigma", "-0.5"], "gaussian_sigma must be >= 0"),
        (["--iterations", "0"], "--iterations must be >= 1"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_exit_2_one_line_no_output(tmp_path, capsys, args, message):
    out = tmp_path / "result"
    code = main(["run", "denoise", "--size", "40", "--iterations", "2", "--device", "cpu",
                 "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_not_an_image_file(tmp_path, capsys):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    assert main(["run", "denoise", "--image", str(bogus), "--out", str(tmp_path / "o")]) == 2
    assert "image" in capsys.readouterr().err


def test_unknown_task_and_mode_exit_2():
    for args in (["run", "sharpen"], ["run", "denoise", "--upsample", "bicubic"]):
        proc = subprocess.run([sys.executable, "-m", "dipspec.cli", *args], capture_output=True,
                              text=True)
        assert proc.returncode == 2 and "invalid choice" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "dipspec.cli", "run", "--help"],
                          capture_output=True, text=True, check=True)
    for flag in ("--image", "--lambda", "--upsample", "--sigma", "--iterations", "--preset",
                 "--seed", "--device", "--out", "--auto-stop", "--observed"):
        assert flag in proc.stdout
