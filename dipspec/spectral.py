"""Stable import path: the band meter (SPEC §5) now lives in `dipspec.measure` (`measure.fbc`,
`measure.grey`).
"""

from .measure import *  # noqa: F403

__all__ = [
    "FrequencyBandCorrespondence", "fbc", "radial_profile", "to_grey",
]
