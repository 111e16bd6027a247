"""Stable import path: the λ-capped convolutions (SPEC §3), Gaussian upsampling (SPEC §4) and
mean-only batch norm now live in `dipspec.nn` (`nn.lipschitz`, `nn.gaussian`, `nn.norm`).
"""

from .nn import *  # noqa: F403

__all__ = [
    "GaussianUpsample", "LipschitzConv2d", "LipschitzConvTranspose2d", "MeanOnlyBatchNorm",
    "SIGMA_METHODS", "gaussian_kernel", "gaussian_kernel1d", "gaussian_upsample",
    "lipschitz_divisor", "lipschitz_normalise", "precompute_sigma_max", "set_sigma_method",
    "sigma_max", "sigma_max_warm",
]
