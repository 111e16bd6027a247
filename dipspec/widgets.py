"""Stable import path: the explorers now live in `dipspec.viz.widgets`."""

from .viz import widgets as _widgets
from .viz.widgets import *  # noqa: F403

__all__ = list(_widgets.__all__)
