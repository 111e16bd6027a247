"""The ``dipspec`` command line: ``run`` (restore one image), ``resume`` (continue a stopped
run), ``table`` (Chakrabarty & Maji's architecture table), ``sweep`` (a spec's fits,
batched, resumable, here or on Ray) and ``teach`` (the Voilà lesson).

- :mod:`~dipspec.cli.main` parses, dispatches and turns every failure into one line;
  :mod:`~dipspec.cli.parser` holds the flags, :mod:`~dipspec.cli.errors` the exit codes.
- :mod:`~dipspec.cli.inputs` checks the flags and builds the task and model;
  :mod:`~dipspec.cli.estimate` the time and memory a fit will take, before it starts.
- :mod:`~dipspec.cli.run` fits, checkpoints and writes; :mod:`~dipspec.cli.outputs` makes sure
  that no user file is ever replaced and that a result on disk is always complete.
- :mod:`~dipspec.cli.table` runs the architecture table with a journal of finished fits.
- :mod:`~dipspec.cli.sweep` runs a sweep (:mod:`dipspec.experiments.sweep`) into a folder
  it locks and marks as a sweep's.
- :mod:`~dipspec.cli.teach` serves the Voilà lesson, or precomputes the grid it opens on.
"""

from .main import main

__all__ = ["main"]
