"""Sweeps: many fits from one spec file, batched, journalled, on this machine or a Ray cluster.

A spec (TOML, or YAML with PyYAML) lists configurations — a grid and / or single entries —
with the keys :func:`dipspec.fit` and the tasks use (:data:`KEYS`). :func:`run_sweep` checks
every configuration and loads its image before the first fit, groups compatible fits into
batches that run as one :func:`dipspec.fit_many` call, journals every finished batch at once
(a rerun skips them; a changed spec runs only its new fits) and writes a tidy table with one
row per fit, each fit's history beside it, and the sweep's provenance.

- :mod:`~dipspec.experiments.sweep.keys`: the keys, their defaults, impossible combinations;
- :mod:`~dipspec.experiments.sweep.spec`: reading, expanding and checking a spec;
- :mod:`~dipspec.experiments.sweep.plan`: which fits batch together;
- :mod:`~dipspec.experiments.sweep.runner`: one batch (what a local or Ray worker runs);
- :mod:`~dipspec.experiments.sweep.engines`: ``local`` and ``ray``;
- :mod:`~dipspec.experiments.sweep.store`: journal, histories, table, provenance on disk;
- :mod:`~dipspec.experiments.sweep.run`: :func:`run_sweep`.

Specs shipped with the kit (``specs/``): ``architectures`` (Chakrabarty & Maji's table) and
``example`` (the README's).
"""

from .engines import ENGINES, BatchFailed
from .keys import KEYS, MODELS, SpecError
from .plan import Batch, plan
from .run import SweepReport, run_sweep
from .spec import Fit, Sweep, load_spec, shipped_spec
from .store import OUTPUT_FILES, architecture_rows, read_history, read_table

__all__ = ["ENGINES", "KEYS", "MODELS", "OUTPUT_FILES", "Batch", "BatchFailed", "Fit",
           "SpecError", "Sweep", "SweepReport", "architecture_rows", "load_spec", "plan",
           "read_history", "read_table", "run_sweep", "shipped_spec"]
