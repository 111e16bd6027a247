"""dipspec: measure and control the spectral bias of the deep image prior.

Reproduces Shi, Mettes, Maji & Snoek, "On Measuring and Controlling the Spectral Bias of the
Deep Image Prior" (IJCV 2022) and the experiments of Chakrabarty & Maji (2019).

>>> import dipspec
>>> from dipspec.tasks import Denoise
>>> clean = dipspec.data.load_image("camera", size=32)
>>> result = dipspec.fit(Denoise(clean=clean), iterations=3, preset="quick", device="cpu",
...                      progress=False)
>>> result.output.shape
torch.Size([1, 1, 32, 32])
"""

from . import data, layers, metrics, models, presets, spectral, stopping, tasks
from .fitting import FitResult, fit, fit_many

__all__ = [
    "FitResult",
    "data",
    "fit",
    "fit_many",
    "layers",
    "metrics",
    "models",
    "presets",
    "spectral",
    "stopping",
    "tasks",
]
__version__ = "0.1.0"
