"""Fitting: one engine that runs K ≥ 1 deep-image-prior fits, and its two faces.

- :func:`fit` — one fit; :func:`fit_many` — K fits of one architecture as one computation.
- :mod:`~dipspec.fitting.engine` — the loop (step, instruments, backtracking, averaging, stop
  rule, callbacks, history), written once for both.
- :mod:`~dipspec.fitting.single` / :mod:`~dipspec.fitting.grouped` — how one model, or K
  decoders stacked into one grouped network, take a step.

The folder is ``fitting`` rather than ``fit`` so that ``dipspec.fit`` stays the function.
"""

from .api import fit, fit_many
from .engine import Settings
from .result import FBC_COLUMNS, METRIC_COLUMNS, FitResult
from .single import padded_size

__all__ = ["FBC_COLUMNS", "METRIC_COLUMNS", "FitResult", "Settings", "fit", "fit_many",
           "padded_size"]
