"""Networks and their spectrally controlled layers (SPEC §2–§4); imports only torch.

- `lipschitz`: σ_max and the λ-capped convolutions (SPEC §3).
- `gaussian`: the fixed 2× Gaussian upsampler (SPEC §4).
- `norm`: mean-only batch norm (SPEC §2).
- `init`, `inputs`: seeded initialisation and the fixed code ``z``.
- `decoder`, `skipnet`, `baselines`: the paper's decoder, the DIP encoder–decoder and
  Chakrabarty & Maji's convolution-free baselines.

Every model maps a fixed code ``z`` to an image ``(B, C, H, W)`` in [0, 1] (sigmoid output).
"""

from .baselines import (
    LINEAR_DIP_DEPTH,
    LinearDIP,
    ReLUNet,
    linear_dip_parameter_count,
    retain_freed_memory,
)
from .decoder import UPSAMPLE_MODES, ConvNet, Decoder
from .decoder import _ControlledNet as _ControlledNet
from .gaussian import GaussianUpsample, gaussian_kernel, gaussian_kernel1d, gaussian_upsample
from .gaussian import _gaussian_upsample as _gaussian_upsample
from .init import init_weights
from .inputs import INPUT_KINDS, make_input
from .lipschitz import (
    SIGMA_METHODS,
    LipschitzConv2d,
    LipschitzConvTranspose2d,
    controlled_layers,
    lipschitz_divisor,
    lipschitz_normalise,
    precompute_sigma_max,
    set_sigma_method,
    sigma_max,
    sigma_max_warm,
)
from .lipschitz import _LipschitzMixin as _LipschitzMixin
from .lipschitz import _sigma_for as _sigma_for
from .norm import MeanOnlyBatchNorm
from .skipnet import SkipNet

__all__ = [
    "INPUT_KINDS",
    "LINEAR_DIP_DEPTH",
    "SIGMA_METHODS",
    "UPSAMPLE_MODES",
    "ConvNet",
    "Decoder",
    "GaussianUpsample",
    "LinearDIP",
    "LipschitzConv2d",
    "LipschitzConvTranspose2d",
    "MeanOnlyBatchNorm",
    "ReLUNet",
    "SkipNet",
    "controlled_layers",
    "gaussian_kernel",
    "gaussian_kernel1d",
    "gaussian_upsample",
    "init_weights",
    "linear_dip_parameter_count",
    "lipschitz_divisor",
    "lipschitz_normalise",
    "make_input",
    "precompute_sigma_max",
    "retain_freed_memory",
    "set_sigma_method",
    "sigma_max",
    "sigma_max_warm",
]
