"""Shared pytest fixtures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def golden_dir() -> Path:
    """The golden folder: ``$DIPSPEC_GOLDEN`` if set, else ``../shared/golden`` beside the repo."""
    env = os.environ.get("DIPSPEC_GOLDEN")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "golden"


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
    """Golden values; skips the test when the folder is absent (e.g. on a user's machine)."""
    path = golden_dir()
    if not (path / "expected.json").is_file():
        pytest.skip(f"golden values not found at {path} (set DIPSPEC_GOLDEN to their folder)")
    return Golden(path, json.loads((path / "expected.json").read_text()))
