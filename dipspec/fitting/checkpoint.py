"""Checkpoint files: the whole state of a fit, written atomically, read back to resume.

A checkpoint holds what is needed to continue a fit as if it had never stopped: the tasks and
models (pickled, so their classes must be importable where it is resumed), the seeds and
settings, the network's weights and σ state, Adam's moments, every member's random generator,
the history so far, the oracle image, the backtracking snapshot, output averaging and the stop
rule's state (each member's copy as its ``state_dict()``, :mod:`~dipspec.fitting.stops`).
Resumed on the same machine (CPU), the fit's results are the same bytes as an uninterrupted
run's.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

__all__ = ["FORMAT", "Checkpointer", "read_checkpoint"]

FORMAT = "dipspec-fit-checkpoint"
#: 2: the stop rule is a :class:`~dipspec.measure.StopRule` per member (1 held AutoStops).
VERSION = 2
#: Without ``checkpoint_every``, a checkpoint is written after about this much work.
DEFAULT_SECONDS = 60.0


class Checkpointer:
    """Writes the fit's state to ``path`` every ``every`` iterations, or every
    :data:`DEFAULT_SECONDS` of work when ``every`` is None; nothing when ``path`` is None."""

    def __init__(self, path: str | os.PathLike | None, every: int | None) -> None:
        self.path = None if path is None else Path(path)
        self.every = every
        self._last = time.perf_counter()

    def due(self, completed: int) -> bool:
        """Whether to write after ``completed`` iterations."""
        if self.path is None:
            return False
        if self.every:
            return completed % self.every == 0
        return time.perf_counter() - self._last >= DEFAULT_SECONDS

    def write(self, payload: dict) -> str | None:
        """Write ``payload`` atomically (a temporary file in the same folder, then a rename)."""
        if self.path is None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=f".{self.path.name}.",
                                             suffix=".tmp", delete=False)
        try:
            with handle:
                torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(handle.name, 0o644)
            os.replace(handle.name, self.path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        self._last = time.perf_counter()
        return str(self.path)


def read_checkpoint(path: str | os.PathLike, device: torch.device | None = None) -> dict:
    """The payload of a checkpoint written by :class:`Checkpointer`; a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; a fit writes one when given "
                                "checkpoint=PATH (dipspec run writes it into its output folder)")
    try:
        # the file holds pickled tasks and models: load only checkpoints you wrote yourself
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure means the same thing)
        raise ValueError(f"{path} is not a readable dipspec checkpoint ({exc.__class__.__name__}:"
                         f" {exc}); it may be truncated or from another program") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dipspec checkpoint")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path} is a checkpoint of version {payload.get('version')}; this "
                         f"dipspec reads version {VERSION}")
    return payload
