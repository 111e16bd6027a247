"""The ``dipspec`` command: what it restores (a synthetic test or a user's photo as given), what
it writes, and the output folder rules (no user file is ever deleted, no half result)."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dipspec.cli import main, outputs

RUN = ["--iterations", "3", "--channels", "8", "--device", "cpu", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(path, size=(37, 41), mode="RGB"):
    rng = np.random.default_rng(0)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return str(path)


def test_synthetic_test_end_to_end(tmp_path, capsys):
    out = tmp_path / "result"
    code = main(["run", "denoise", "--image", "camera", "--size", "40", "--iterations", "30",
                 "--preset", "quick", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out.splitlines()
    assert stdout[0] == ("synthetic test: camera + Gaussian noise σ=25/255, PSNR against the "
                         "clean image")
    assert str(out) in stdout[-1] and "final PSNR" in stdout[-1]
    assert {p.name for p in out.iterdir()} == {"output.png", "observation.png", "best.png",
                                               "history.csv", "psnr.png", "run.json",
                                               outputs.MARKER}
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 30 and {"iteration", "loss", "psnr", "fbc_1", "ratio"} <= set(history)
    assert history["psnr"].notna().all()
    assert Image.open(out / "output.png").size == (40, 40)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_a_photo_is_restored_as_given(tmp_path, capsys):
    photo = _photo(tmp_path / "noisy.png")
    out = tmp_path / "result"
    assert main(["run", "denoise", "--image", photo, *RUN, "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"restoring {photo} as given (no clean reference, no PSNR)"
    assert Image.open(out / "output.png").size == (37, 41)
    assert (out / "observation.png").read_bytes() == (tmp_path / "noisy.png").read_bytes()
    assert not (out / "best.png").exists()
    assert pd.read_csv(out / "history.csv")["psnr"].isna().all()


def test_synthetic_flag_degrades_a_file_and_observed_keeps_working(tmp_path, capsys):
    photo = _photo(tmp_path / "clean.png")
    assert main(["run", "denoise", "--image", photo, "--synthetic", *RUN,
                 "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.startswith(f"synthetic test: {photo} + Gaussian noise")
    assert (tmp_path / "a" / "best.png").exists()
    assert main(["run", "denoise", "--image", "camera", "--observed", "--size", "24", *RUN,
                 "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.startswith("restoring camera as given")


def test_inpaint_a_photo_with_its_mask(tmp_path, capsys):
    photo = _photo(tmp_path / "damaged.png", size=(24, 20))
    known = np.full((20, 24), 255, np.uint8)
    known[5:10, 5:10] = 0
    Image.fromarray(known).save(tmp_path / "known.png")
    out = tmp_path / "result"
    assert main(["run", "inpaint", "--image", photo, "--mask", str(tmp_path / "known.png"),
                 *RUN, "--out", str(out)]) == 0
    assert "known pixels from" in capsys.readouterr().out.splitlines()[0]
    assert Image.open(out / "output.png").size == (24, 20)


def test_a_grey_photo_end_to_end(tmp_path):
    photo = _photo(tmp_path / "grey.png", size=(30, 26), mode="L")
    out = tmp_path / "result"
    assert main(["run", "super_resolve", "--image", photo, "--factor", "2", *RUN,
                 "--out", str(out)]) == 0
    restored = Image.open(out / "output.png")
    assert restored.mode == "L" and restored.size == (60, 52)


def test_a_large_photo_is_capped_with_a_message(tmp_path, capsys, monkeypatch):
    from dipspec.cli import inputs

    monkeypatch.setattr(inputs, "PHOTO_CAP", 20)
    photo = _photo(tmp_path / "big.png", size=(40, 30))
    assert main(["run", "denoise", "--image", photo, "--preset", "quick", *RUN,
                 "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "is 40×30 pixels: restoring it at 20×15" in lines[1] and "--size 0" in lines[1]
    assert Image.open(tmp_path / "r" / "output.png").size == (20, 15)


# -- the output folder ---------------------------------------------------------------------


def _run(out, *extra) -> int:
    return main(["run", "denoise", "--image", "camera", "--size", "16", *RUN, *extra,
                 "--out", str(out)])


def test_a_folder_dipspec_did_not_write_is_never_touched(tmp_path, capsys):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("four years")
    assert _run(docs) == 2
    assert "thesis.txt" in capsys.readouterr().err
    assert (docs / "thesis.txt").read_text() == "four years"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydocs"]


def test_its_own_folder_is_replaced_but_not_a_users_file_inside(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(out) == 0
    first = (out / "history.csv").read_bytes()
    assert _run(out, "--seed", "1") == 0  # replaced: a new result, nothing left beside it
    assert (out / "history.csv").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    (out / "notes.txt").write_text("mine")
    assert _run(out) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").exists()


def test_resume_refuses_a_finished_run(tmp_path, capsys):
    assert _run(tmp_path / "r") == 0
    assert main(["resume", str(tmp_path / "r")]) == 2
    assert "complete, nothing to resume" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_symlink_is_refused(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert _run(tmp_path / "link") == 2
    assert "symbolic link" in capsys.readouterr().err


def _result(folder, state="complete", text="new"):
    folder.mkdir()
    (folder / "output.png").write_text(text)
    (folder / outputs.MARKER).write_text(json.dumps(
        {"written_by": "dipspec", "state": state, "files": ["output.png"]}))


@pytest.mark.parametrize("staging_state, kept", [("complete", "new"), ("staging", "old")])
def test_a_swap_cut_short_is_finished_or_rolled_back(tmp_path, staging_state, kept):
    out = tmp_path / "r"
    _result(tmp_path / ".r.dipspec-old", text="old")  # killed after the first rename
    _result(tmp_path / ".r.dipspec-staging", staging_state, text="new")
    outputs.recover(out, "--out r")
    assert (out / "output.png").read_text() == kept
    assert not (tmp_path / ".r.dipspec-old").exists()


def test_stale_staging_is_cleaned_and_a_live_one_refused(tmp_path, capsys):
    out = tmp_path / "r"
    _result(tmp_path / ".r.dipspec-staging", "staging")  # a killed run's
    live = outputs.open_output(str(tmp_path / "s"))  # a running one (it holds the lock)
    assert _run(out) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.dipspec-staging", "r"]
    if sys.platform != "win32":
        assert _run(tmp_path / "s") == 2
        assert "another dipspec run" in capsys.readouterr().err
    live.abandon()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_unknown_task_and_mode_exit_2():
    for args in (["run", "sharpen"], ["run", "denoise", "--upsample", "bicubic"]):
        proc = subprocess.run([sys.executable, "-m", "dipspec.cli", *args], capture_output=True,
                              text=True)
        assert proc.returncode == 2 and "invalid choice" in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "dipspec.cli", "run", "--help"],
                          capture_output=True, text=True, check=True)
    for flag in ("--image", "--synthetic", "--observed", "--mask", "--lambda", "--upsample",
                 "--sigma", "--channels", "--iterations", "--preset", "--seed", "--device",
                 "--out", "--auto-stop", "--checkpoint-every", "--debug", "dipspec resume"):
        assert flag in proc.stdout


def test_a_file_added_during_the_run_is_kept_and_the_results_set_aside(tmp_path, capsys,
                                                                       monkeypatch):
    import dipspec.fitting

    out = tmp_path / "r"
    assert _run(out) == 0
    real = dipspec.fitting.fit

    def meanwhile(*args, **kwargs):
        (out / "notes.txt").write_text("mine")  # the user saves a file there mid-run
        return real(*args, **kwargs)

    monkeypatch.setattr(dipspec.fitting, "fit", meanwhile)
    assert _run(out) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "notes.txt" in errors[0] and "r-dipspec-1" in errors[0]
    assert (out / "notes.txt").read_text() == "mine"
    assert (tmp_path / "r-dipspec-1" / "output.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r-dipspec-1"]


def test_a_failed_run_keeps_only_a_staging_folder_that_can_be_resumed(tmp_path):
    resumable = outputs.open_output(str(tmp_path / "r"))
    (resumable.staging / outputs.CHECKPOINT).write_bytes(b"state")
    resumable.fail()
    outputs.open_output(str(tmp_path / "s")).fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.dipspec-staging"]
