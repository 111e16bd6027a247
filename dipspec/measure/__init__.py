"""Meters: tensors in, tensors out, never importing a network or a task (SPEC §5, §6).

- `grey`: the reference's grey conversion.
- `fbc`: frequency-band correspondence and the radial power spectrum (SPEC §5).
- `blur`: blurriness, MLV sharpness and their ratio, the stopping signal (SPEC §6).
- `stop_rules`: the paper's window rule, offline and online (SPEC §6), and the stop-rule
  objects (`StopRule` in `stop_base`; ES-WMV / ES-EMV in `variance_rules`; `RatioPlateau` in
  `ratio_rules`; the oracle), with `make_stop_rule` and the offline `stop_iteration`.
- `quality`: full-reference PSNR and SSIM.
- `spectrum`: the centred log-magnitude spectrum (the iteration scrubber's panels).

The private cores (``_fbc``, ``_blurriness``, ``_mlv_sharpness``, ``_psnr`` …) skip the checks,
so the training loop may call them every iteration.
"""

from .blur import blur_sharpness_ratio, blurriness, mlv_sharpness, ratio_defined
from .fbc import FrequencyBandCorrespondence, fbc, radial_profile
from .fbc import _radial_weights as _radial_weights
from .grey import to_grey
from .noise_rules import Discrepancy
from .quality import psnr, ssim
from .ratio_rules import RatioPlateau
from .spectrum import log_spectrum
from .stop_base import StopRule
from .stop_rules import (
    STOP_RULES,
    AutoStop,
    OracleRule,
    PaperRule,
    first_stop_iteration,
    make_stop_rule,
    stop_iteration,
)
from .variance_rules import ESEMV, ESWMV, replay_variance

__all__ = [
    "AutoStop",
    "Discrepancy",
    "ESEMV",
    "ESWMV",
    "FrequencyBandCorrespondence",
    "OracleRule",
    "PaperRule",
    "RatioPlateau",
    "STOP_RULES",
    "StopRule",
    "blur_sharpness_ratio",
    "blurriness",
    "fbc",
    "first_stop_iteration",
    "log_spectrum",
    "make_stop_rule",
    "mlv_sharpness",
    "psnr",
    "radial_profile",
    "replay_variance",
    "ratio_defined",
    "ssim",
    "stop_iteration",
    "to_grey",
]
