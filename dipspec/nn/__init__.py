"""TEMPORARY skeleton during the house refactor: re-exports the old network modules."""

from ..baselines import *  # noqa: F403
from ..baselines import __all__ as _b
from ..layers import *  # noqa: F403
from ..layers import __all__ as _l
from ..models import *  # noqa: F403
from ..models import __all__ as _m
from ..models import _ControlledNet  # noqa: F401

__all__ = sorted(set(_b) | set(_l) | set(_m))
