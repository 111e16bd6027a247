"""Shared pytest fixtures."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


#: The authors' numbers, vendored from the project's ``../shared/golden`` (see its README).
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


def golden_dir() -> Path:
    """The golden folder: ``$DIPSPEC_GOLDEN`` if set, else the vendored ``tests/data/golden``."""
    env = os.environ.get("DIPSPEC_GOLDEN")
    return Path(env) if env else GOLDEN


@dataclass
class Golden:
    """The authors' numbers (see ``golden/README.md``): ``expected.json`` and the ``.npz`` files."""

    path: Path
    expected: dict
    _arrays: dict = field(default_factory=dict, repr=False)

    def npz(self, stem: str) -> dict[str, np.ndarray]:
        """Arrays of ``<stem>.npz`` (e.g. ``"metric_inputs"``), loaded once."""
        if stem not in self._arrays:
            with np.load(self.path / f"{stem}.npz") as data:
                self._arrays[stem] = {key: data[key] for key in data.files}
        return self._arrays[stem]

    @property
    def metric_inputs(self) -> dict[str, np.ndarray]:
        return self.npz("metric_inputs")

    @property
    def stopping_sequence(self) -> dict[str, np.ndarray]:
        return self.npz("stopping_sequence")


@pytest.fixture(scope="session")
def golden() -> Golden:
    """Golden values. They ship with the tests, so a missing folder is an error, not a skip."""
    path = golden_dir()
    if not (path / "expected.json").is_file():
        pytest.fail(f"golden values not found at {path}: restore tests/data/golden from git, "
                    "or point DIPSPEC_GOLDEN at a folder holding expected.json and the .npz files")
    return Golden(path, json.loads((path / "expected.json").read_text()))


@dataclass
class FakePaperData:
    """A tiny stand-in for the paper's data folder: files written here are the whole registry.

    Tests of the mirror, cache and checksum logic use it, so they run without the paper's
    images (``../shared/paper-data`` is not part of a clone).
    """

    root: Path
    registry: dict = field(default_factory=dict)

    def add(self, relpath: str, payload: bytes | np.ndarray) -> Path:
        """Write ``relpath`` (bytes, or an H×W / H×W×3 uint8 array saved as PNG) and register it."""
        if isinstance(payload, np.ndarray):
            from PIL import Image

            buffer = io.BytesIO()
            Image.fromarray(payload).save(buffer, format="PNG")
            payload = buffer.getvalue()
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        self.registry[relpath] = hashlib.sha256(payload).hexdigest()
        return path


@pytest.fixture
def fake_paper_data(monkeypatch, tmp_path) -> FakePaperData:
    """An empty :class:`FakePaperData` mirror, set as ``$DIPSPEC_DATA_MIRROR``; downloads fail."""
    import pooch

    from dipspec.data import paper

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    fake = FakePaperData(tmp_path / "paper-data")
    fake.root.mkdir()
    monkeypatch.setattr(paper, "_registry", lambda: fake.registry)
    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", refuse)
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", str(fake.root))
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(tmp_path / "cache"))
    return fake


@pytest.fixture
def one_thread():
    """One torch thread: the 2 shared cores are not oversubscribed (results do not change)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    """Ctrl-C as in a terminal, even where the suite runs as a background job: a shell's ``&``
    makes the job ignore SIGINT, the fit rightly respects an ignored SIGINT, and the tests that
    press Ctrl-C (in this process, or in a CLI subprocess, which inherits an ignored SIGINT)
    would not be heard."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
