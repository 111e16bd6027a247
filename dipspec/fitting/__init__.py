"""Fitting: one engine that runs K ≥ 1 deep-image-prior fits, and its two faces.

- :func:`fit` — one fit; :func:`fit_many` — K fits of one architecture as one computation.
- :mod:`~dipspec.fitting.engine` — the loop (step, instruments, backtracking, averaging, stop
  rule, callbacks, history), written once for both.
- :mod:`~dipspec.fitting.single` / :mod:`~dipspec.fitting.grouped` — how one model, or K
  decoders stacked into one grouped network, take a step.
- :mod:`~dipspec.fitting.checkpoint` / :mod:`~dipspec.fitting.interrupts` — the fit's state on
  disk (:func:`resume` continues it to the same bytes) and stopping it cleanly (Ctrl-C,
  SIGTERM, a diverged loss).

The folder is ``fitting`` rather than ``fit`` so that ``dipspec.fit`` stays the function.
"""

from .api import fit, fit_many, resume
from .engine import Settings
from .interrupts import FitDiverged, FitInterrupted, request_interrupt
from .result import FBC_COLUMNS, METRIC_COLUMNS, FitResult, log_spaced_iterations
from .single import padded_size

__all__ = ["FBC_COLUMNS", "METRIC_COLUMNS", "FitDiverged", "FitInterrupted", "FitResult",
           "Settings", "fit", "fit_many", "log_spaced_iterations", "padded_size",
           "request_interrupt", "resume"]
