"""Stable import path: Chakrabarty & Maji's convolution-free baselines now live in
`dipspec.nn.baselines`.
"""

from .nn import *  # noqa: F403

__all__ = [
    "LINEAR_DIP_DEPTH", "LinearDIP", "ReLUNet", "linear_dip_parameter_count",
    "retain_freed_memory",
]
