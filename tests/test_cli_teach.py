"""``dipspec teach``: the Voilà command it runs (the lesson, 127.0.0.1, the grid passed on),
``--precompute`` writing a grid the lesson loads, and one-line errors (exit 2) for a missing
grid, an existing one, or a wrong suffix — with nothing written."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dipspec.cli import main, teach
from dipspec.experiments import load_grid
from dipspec.experiments.grid import LESSON_GRID


def test_teach_serves_the_lesson_with_voila_on_localhost(monkeypatch, tmp_path):
    pytest.importorskip("voila")
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command, env: calls.append((command, env)) or 0)
    assert main(["teach", "--port", "9999", "--no-browser"]) == 0
    (command, env), = calls
    assert command[:3] == [sys.executable, "-m", "voila"]
    assert command[3] == str(teach.LESSON) and teach.LESSON.is_file()
    assert "--port=9999" in command and "--Voila.ip=127.0.0.1" in command
    assert "--no-browser" in command
    assert env["DIPSPEC_TEACH_GRID"] == str(LESSON_GRID) and LESSON_GRID.is_file()


def test_the_committed_lesson_grid_is_the_quick_default_grid():
    grid = load_grid(LESSON_GRID)
    assert len(grid.results) == 16 and grid.values("image") == ["camera"]
    assert grid.values("lipschitz_lambda") == [0.0, 1.0, 1.2, 2.0]
    assert grid.values("gaussian_sigma") == [0.0, 0.5, 1.0]
    assert grid.settings["iterations"] == 2000 and grid.settings["channels"] == 32
    assert all(len(r.snapshots) >= 10 for r in grid.results.values())


def test_precompute_writes_a_grid_the_lesson_loads(tmp_path, capsys):
    path = tmp_path / "small.npz"
    assert main(["teach", "--precompute", "--grid", str(path), "--iterations", "3",
                 "--images", "camera", "--threads", "1", "--quiet"]) == 0
    assert "16 fits written to" in capsys.readouterr().err
    grid = load_grid(path)
    assert len(grid.results) == 16 and grid.settings["iterations"] == 3
    assert (tmp_path / "small.json").is_file()


@pytest.mark.parametrize("case, message", [
    ("missing", "no grid at .*; make it with dipspec teach --precompute --grid"),
    ("exists", "exists; pass --grid NEW.npz"),
    ("suffix", "a grid file ends in .npz"),
])
def test_teach_errors_are_one_line(case, message, tmp_path, capsys):
    existing = tmp_path / "kept.npz"
    existing.write_bytes(b"not mine")
    args = {"missing": ["teach", "--grid", str(tmp_path / "none.npz")],
            "exists": ["teach", "--precompute", "--grid", str(existing)],
            "suffix": ["teach", "--precompute", "--grid", str(tmp_path / "grid.pt")]}[case]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dipspec teach: error: ")
    assert re.search(message, err)
    assert existing.read_bytes() == b"not mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.npz"]
