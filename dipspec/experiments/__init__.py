"""The notebooks' experiments: configuration, sweeps, findings and summary tables.

The notebooks in ``notebooks/`` hold no logic of their own: each builds a :class:`Setup` with
:func:`configure` (its preset plus the few cost knobs of its ``parameters`` cell), runs the fits
through the helpers here, and prints the findings that :func:`report` formats. Everything here
is plain Python over :func:`dipspec.fit` and :class:`~dipspec.FitResult`; plotting lives in
:mod:`dipspec.viz.plots`, interactive controls in :mod:`dipspec.viz.widgets`.

Shi et al. (notebooks 00–06), by concept:

- :mod:`~dipspec.experiments.setup`: figure defaults, :class:`Setup`, images, tasks, networks;
- :mod:`~dipspec.experiments.runs`: fits, side-by-side fits and sweeps;
- :mod:`~dipspec.experiments.readouts`: peaks, FBC bands, summary, PSNR and stop tables;
- :mod:`~dipspec.experiments.findings`: the notebooks' named booleans and :func:`report`;
- :mod:`~dipspec.experiments.grid`: a precomputed, saved image × λ × upsampling × σ grid for
  the explorers and the Voilà lesson.

Chakrabarty & Maji (notebooks 07–11) live in :mod:`dipspec.experiments.chakrabarty`.

Peaks are judged on a smoothed PSNR curve (a centred rolling mean over ``setup.smooth``
iterations), because single-iteration PSNR is spiky; FBC values "at" an iteration are the
smoothed bands at the nearest measured iteration.

Examples
--------
>>> setup = configure("lipschitz_control", "quick", device="cpu")
>>> setup.preset.image_size, setup.lambdas, setup.iterations
(64, (1.0, 1.2, 2.0), 2000)
"""

from . import findings, grid, readouts, runs, setup  # noqa: F401 - grid: experiments.grid
from .findings import *  # noqa: F403
from .grid import Grid, GridKey, load_grid, precompute_grid  # noqa: F401 - in __all__
from .readouts import *  # noqa: F403
from .runs import *  # noqa: F403
from .setup import *  # noqa: F403

__all__ = sorted(["Grid", "GridKey", "load_grid", "precompute_grid", *findings.__all__,
                  *readouts.__all__, *runs.__all__, *setup.__all__])
