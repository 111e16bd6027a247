"""Interruption loses nothing: real signals sent to a real ``dipspec run`` process.

SIGKILL at a random iteration after the first checkpoint, then ``dipspec resume`` → the same
``history.csv`` and PNGs, byte for byte, as a run never stopped; Ctrl-C (SIGINT) → exit 130,
one line, the partial results (resumable too); SIGTERM → exit 143.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ARGS = ["run", "denoise", "--image", "camera", "--size", "40", "--channels", "8",
        "--iterations", "300", "--checkpoint-every", "20", "--device", "cpu", "--quiet"]
COMPARED = ("history.csv", "output.png", "best.png", "observation.png", "psnr.png")


def _env() -> dict:
    # one thread: the same reduction order in every process, and no spinning on shared cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "DIPSPEC_PROGRESS": "0"}


def _dipspec(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dipspec.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=240)


def _start(out: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dipspec.cli", *ARGS, "--out", out],
                            cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, staging: Path, count: int = 1) -> None:
    """Wait until the run has written ``count`` checkpoints (each is a new file, atomically
    renamed into place, so its inode changes)."""
    deadline, seen, last = time.monotonic() + 120, 0, None
    while seen < count:
        try:
            inode = (staging / "checkpoint.pt").stat().st_ino
        except FileNotFoundError:
            inode = None
        if inode is not None and inode != last:
            seen, last = seen + 1, inode
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run with the same arguments."""
    cwd = tmp_path_factory.mktemp("reference")
    done = _dipspec(*ARGS, "--out", "whole", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd / "whole"


def _same_bytes(folder: Path, reference: Path) -> None:
    for name in COMPARED:
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name


def test_sigkill_then_resume_is_byte_identical(reference, tmp_path):
    proc = _start("killed", tmp_path)
    # a random iteration between the first and the fifth checkpoint (20..100 of 300)
    _wait_for_checkpoint(proc, tmp_path / ".killed.dipspec-staging", random.randint(1, 4))
    time.sleep(random.uniform(0.0, 0.1))
    proc.kill()
    proc.communicate()
    assert not (tmp_path / "killed").exists()  # nothing published, the staging folder kept
    done = _dipspec("resume", "killed", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _same_bytes(tmp_path / "killed", reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed"]  # no hidden leftovers
    assert not (tmp_path / "killed" / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["status"] == "complete"


def test_ctrl_c_writes_partial_results_then_resumes(reference, tmp_path):
    proc = _start("stopped", tmp_path)
    _wait_for_checkpoint(proc, tmp_path / ".stopped.dipspec-staging")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted (SIGINT)" in lines[0], err
    assert "Traceback" not in err and "dipspec resume stopped" in lines[0]
    out = tmp_path / "stopped"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "partial" and 0 <= record["iteration"] < 299
    history = pd.read_csv(out / "history.csv")
    assert history["iteration"].iloc[-1] == record["iteration"]
    for name in ("output.png", "best.png", "observation.png", "checkpoint.pt"):
        assert (out / name).is_file(), name

    done = _dipspec("resume", "stopped", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _same_bytes(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped"]


def test_sigterm_exits_143_with_partial_results(tmp_path):
    proc = _start("terminated", tmp_path)
    _wait_for_checkpoint(proc, tmp_path / ".terminated.dipspec-staging")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM" in err
    record = json.loads((tmp_path / "terminated" / "run.json").read_text())
    assert record["status"] == "partial"
    assert (tmp_path / "terminated" / "checkpoint.pt").is_file()
