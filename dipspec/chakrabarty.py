"""Stable import path: Chakrabarty & Maji's experiments now live in
`dipspec.experiments.chakrabarty`, their figures in `dipspec.viz.chakrabarty`.
"""

from .experiments import chakrabarty as _experiments
from .experiments.chakrabarty import *  # noqa: F403
from .viz import chakrabarty as _figures
from .viz.chakrabarty import *  # noqa: F403

__all__ = sorted([*_experiments.__all__, *_figures.__all__])
