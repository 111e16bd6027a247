"""Stable import path: the blur/sharpness ratio, the paper's stop rule (SPEC §6) and the other
stop rules now live in `dipspec.measure` (`measure.blur`, `measure.stop_rules`).
"""

from .measure import *  # noqa: F403

__all__ = [
    "AutoStop", "blur_sharpness_ratio", "blurriness", "first_stop_iteration", "mlv_sharpness",
    "ratio_defined", "ESEMV", "ESWMV", "STOP_RULES", "OracleRule", "PaperRule", "RatioPlateau",
    "StopRule", "make_stop_rule", "stop_iteration",
]
