"""Stable import path: the plotting helpers now live in `dipspec.viz.plots`."""

from .viz import plots as _plots
from .viz.plots import *  # noqa: F403

__all__ = list(_plots.__all__)
