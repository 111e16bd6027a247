"""TEMPORARY skeleton during the house refactor: re-exports the old meter modules."""

from ..metrics import *  # noqa: F403
from ..metrics import __all__ as _q
from ..spectral import *  # noqa: F403
from ..spectral import __all__ as _s
from ..stopping import *  # noqa: F403
from ..stopping import __all__ as _t

__all__ = sorted(set(_q) | set(_s) | set(_t))
