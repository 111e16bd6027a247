"""Meters: tensors in, tensors out, never importing a network or a task (SPEC §5, §6).

- `grey`: the reference's grey conversion.
- `fbc`: frequency-band correspondence and the radial power spectrum (SPEC §5).
- `blur`: blurriness, MLV sharpness and their ratio, the stopping signal (SPEC §6).
- `stop_rules`: the paper's window rule, offline and online (SPEC §6).
- `quality`: full-reference PSNR and SSIM.

The private cores (``_fbc``, ``_blurriness``, ``_mlv_sharpness``, ``_psnr`` …) skip the checks,
so the training loop may call them every iteration.
"""

from .blur import blur_sharpness_ratio, blurriness, mlv_sharpness, ratio_defined
from .fbc import FrequencyBandCorrespondence, fbc, radial_profile
from .fbc import _radial_weights as _radial_weights
from .grey import to_grey
from .quality import psnr, ssim
from .stop_rules import AutoStop, first_stop_iteration

__all__ = [
    "AutoStop",
    "FrequencyBandCorrespondence",
    "blur_sharpness_ratio",
    "blurriness",
    "fbc",
    "first_stop_iteration",
    "mlv_sharpness",
    "psnr",
    "radial_profile",
    "ratio_defined",
    "ssim",
    "to_grey",
]
