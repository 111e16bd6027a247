"""``dipspec table`` journals each finished fit: a stopped table resumes with the missing fits
only, and a fit whose settings changed runs again."""

import importlib
import json

import pandas as pd
import pytest
import torch

from dipspec.cli import main
from dipspec.experiments import chakrabarty
from dipspec.experiments.chakrabarty.tables import FitJournal

# the module (the package's attribute of that name is the function)
table_module = importlib.import_module("dipspec.experiments.chakrabarty.architecture_table")

ARGS = ["table", "architectures", "--architectures", "DIP", "ReLUNet", "--seeds", "2",
        "--iterations", "3", "--dip-channels", "4", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the 2 shared cores are not oversubscribed (results do not change)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_images(monkeypatch):
    """Two 32×32 'denoising images' instead of the paper's (no download)."""
    generator = torch.Generator().manual_seed(0)
    images = {name: torch.rand(1, 3, 32, 32, generator=generator) for name in ("a", "b")}
    monkeypatch.setattr(chakrabarty, "table_images", lambda factor, names=None: images)
    return images


@pytest.fixture
def counted_fits(monkeypatch):
    calls = []
    real = table_module._table_fit

    def fit(task, arch, *args):
        calls.append(arch)
        return real(task, arch, *args)

    monkeypatch.setattr(table_module, "_table_fit", fit)
    return calls


def test_a_stopped_table_resumes_with_the_missing_fits(tiny_images, counted_fits, tmp_path,
                                                       capsys, monkeypatch):
    whole = tmp_path / "whole"
    assert main([*ARGS, "--out", str(whole)]) == 0
    assert len(counted_fits) == 8 and not (whole / "architectures.journal.jsonl").exists()

    stopped = tmp_path / "stopped"
    counting = table_module._table_fit  # counts, then fits

    def interrupted(task, arch, *args):  # Ctrl-C during the fourth fit
        if len(counted_fits) == 11:
            raise KeyboardInterrupt
        return counting(task, arch, *args)

    monkeypatch.setattr(table_module, "_table_fit", interrupted)
    capsys.readouterr()
    assert main([*ARGS, "--out", str(stopped)]) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "3 finished fits are kept" in err
    journal = stopped / "architectures.journal.jsonl"
    assert len(journal.read_text().splitlines()) == 3
    with open(journal, "a") as handle:  # and a crash cut the next line short
        handle.write('{"fit": {"image": "a", "arch')

    del counted_fits[:]
    monkeypatch.setattr(table_module, "_table_fit", counting)
    assert main([*ARGS, "--out", str(stopped)]) == 0
    assert len(counted_fits) == 5  # only the missing fits ran
    columns = ["image", "architecture", "seed", "iterations", "psnr", "best_iteration"]
    pd.testing.assert_frame_equal(pd.read_csv(stopped / "architectures.csv")[columns],
                                  pd.read_csv(whole / "architectures.csv")[columns])
    info = json.loads((stopped / "architectures.json").read_text())
    assert info["resumed"] == "3 of 8 fits read from the journal"
    assert not journal.exists()


def test_changed_settings_run_again(tiny_images, counted_fits, tmp_path):
    journal = FitJournal(tmp_path / "architectures.journal.jsonl")
    rows = chakrabarty.architecture_table(tiny_images, seeds=[0], iterations=3,
                                          architectures=["ReLUNet"], journal=journal)
    assert len(counted_fits) == 2 and len(FitJournal(journal.path)) == 2
    again = chakrabarty.architecture_table(tiny_images, seeds=[0], iterations=3,
                                           architectures=["ReLUNet"],
                                           journal=FitJournal(journal.path))
    assert len(counted_fits) == 2  # nothing ran again
    pd.testing.assert_frame_equal(rows, again)
    chakrabarty.architecture_table(tiny_images, seeds=[0], iterations=4,
                                   architectures=["ReLUNet"], journal=FitJournal(journal.path))
    assert len(counted_fits) == 4  # other iterations: both fits ran again
