"""Stable import path: the networks now live in `dipspec.nn` (`nn.decoder`, `nn.skipnet`,
`nn.baselines`, `nn.inputs`).
"""

from .nn import *  # noqa: F403

__all__ = [
    "INPUT_KINDS", "UPSAMPLE_MODES", "ConvNet", "Decoder", "LinearDIP", "ReLUNet", "SkipNet",
    "controlled_layers", "init_weights", "make_input",
]
