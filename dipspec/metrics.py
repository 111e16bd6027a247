"""Stable import path: PSNR and SSIM now live in `dipspec.measure.quality`.
"""

from .measure import *  # noqa: F403

__all__ = [
    "psnr", "ssim",
]
