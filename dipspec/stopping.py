"""Stable import path: the blur/sharpness ratio and the paper's stop rule (SPEC §6) now live in
`dipspec.measure` (`measure.blur`, `measure.stop_rules`).
"""

from .measure import *  # noqa: F403

__all__ = [
    "AutoStop", "blur_sharpness_ratio", "blurriness", "first_stop_iteration", "mlv_sharpness",
    "ratio_defined",
]
