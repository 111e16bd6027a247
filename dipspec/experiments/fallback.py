"""Stand-ins for the paper's images when they cannot be read — in the quick preset only.

On a fresh machine without ``$DIPSPEC_DATA_MIRROR`` and without network (or with
``DIPSPEC_OFFLINE=1``), a paper image cannot be had. The quick preset then uses one of
scikit-image's embedded images instead (:data:`STAND_INS`: a colour natural image for a colour
one, a grey one for a grey one, resized to the paper image's own size so crops and downsampling
factors mean the same), prints one line saying so, and records it: :func:`fallbacks_used` goes
into the provenance JSON of every figure written afterwards in the process
(:func:`dipspec.experiments.provenance.provenance`). The paper preset never falls back: it
raises the download error, since its numbers are only comparable on the paper's images.

Examples
--------
>>> stand_in("denoising/image_Peppers512rgb.png")
('coffee', (512, 512), False)
>>> stand_in("inpainting/Dataset_Bernoulli/img/barbara.png")
('camera', (512, 512), True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from .. import data
from ..data.paper import MIRROR_ENV, OFFLINE_ENV
from ..presets import Preset, resolve

__all__ = ["STAND_INS", "fallbacks_used", "paper_image", "region_mask", "stand_in"]

#: paper image → (embedded stand-in, the paper image's (H, W)). Colour for colour, grey for grey,
#: by content where scikit-image has a match (fur for Baboon, an aircraft for F16, a portrait for
#: Lena, a natural scene for the Kodak photos). Findings computed on stand-ins are not the
#: paper's findings: the tests run the notebooks on them but compare findings only on the
#: paper's images (conftest.py).
STAND_INS: dict[str, tuple[str, tuple[int, int]]] = {
    "denoising/image_Baboon512rgb.png": ("chelsea", (512, 512)),
    "denoising/image_F16_512rgb.png": ("rocket", (512, 512)),
    "denoising/image_House256rgb.png": ("astronaut", (256, 256)),
    "denoising/image_Lena512rgb.png": ("astronaut", (512, 512)),
    "denoising/image_Peppers512rgb.png": ("coffee", (512, 512)),
    "denoising/kodim01.png": ("coffee", (512, 768)),
    "denoising/kodim02.png": ("coffee", (512, 768)),
    "denoising/kodim03.png": ("coffee", (512, 768)),
    "denoising/kodim12.png": ("coffee", (512, 768)),
    "deblocking/classic5/barbara.bmp": ("camera", (512, 512)),
    "inpainting/Dataset_Bernoulli/img/barbara.png": ("camera", (512, 512)),
    "inpainting/vase.png": ("chelsea", (320, 320)),
    "inpainting/library.png": ("coffee", (448, 704)),
    "enhancement/tulips.bmp": ("coffee", (800, 1200)),
}
_GREY_FOLDERS = ("deblocking/classic5/", "inpainting/Dataset_Bernoulli/")

_used: dict[str, str] = {}


def stand_in(relpath: str) -> tuple[str, tuple[int, int] | None, bool]:
    """``(embedded name, paper image's (H, W) or None, grey)`` standing in for ``relpath``.

    Images not in :data:`STAND_INS` get ``"camera"`` (the grey folders: classic5 and the
    Bernoulli inpainting set) or ``"astronaut"`` at the embedded image's own size.
    """
    grey = relpath.startswith(_GREY_FOLDERS)
    name, shape = STAND_INS.get(relpath, ("camera" if grey else "astronaut", None))
    return name, shape, grey


def fallbacks_used() -> dict[str, str]:
    """The paper images replaced so far in this process, ``{relpath: embedded name}``."""
    return dict(_used)


def _allowed(preset: str | Preset | None) -> bool:
    return preset is not None and resolve(preset).name == "quick"


def _announce(relpath: str, label: str | None, name: str, what: str) -> None:
    if relpath in _used:
        return
    _used[relpath] = name
    mirror = "not in $DIPSPEC_DATA_MIRROR" if os.environ.get(MIRROR_ENV) else \
        "no $DIPSPEC_DATA_MIRROR"
    offline = os.environ.get(OFFLINE_ENV, "") not in ("", "0")
    download = "downloads disabled by $DIPSPEC_OFFLINE" if offline else "download failed"
    print(f"paper image {label or relpath} unavailable ({mirror}, {download}): using {what} "
          "instead (quick preset only; recorded in the figure's provenance)", flush=True)


def paper_image(relpath: str, gray: bool = False, size: int | Sequence[int] | None = None, *,
                preset: str | Preset | None = None, label: str | None = None) -> Tensor:
    """:func:`dipspec.data.paper_image`, or its stand-in when unreachable in the quick preset.

    Parameters
    ----------
    relpath, gray, size
        As in :func:`dipspec.data.paper_image`.
    preset : {"quick", "paper", "auto"} or Preset, optional
        Only ``quick`` falls back; ``None`` or ``paper`` re-raise the error.
    label : str, optional
        The name the printed line uses (default: ``relpath``).

    Raises
    ------
    FileNotFoundError
        When the image is unreachable and the preset is not ``quick``.
    """
    try:
        return data.paper_image(relpath, gray=gray, size=size)
    except FileNotFoundError:
        if not _allowed(preset):
            raise
    name, shape, grey = stand_in(relpath)
    _announce(relpath, label, name, f"the embedded {name!r}")
    return data.load_image(name, gray=gray or grey, size=size if size is not None else shape)


def region_mask(relpath: str, shape: tuple[int, int], *,
                preset: str | Preset | None = None) -> Tensor:
    """:func:`dipspec.data.paper_mask` of a region mask, or a drawn one in the quick preset.

    The drawn mask (1 = kept) misses three horizontal and two vertical bars, each 1/16 of the
    side wide — about a third of the pixels, like the paper's scribbled vase mask.
    """
    try:
        return data.paper_mask(relpath)
    except FileNotFoundError:
        if not _allowed(preset):
            raise
    _announce(relpath, None, "drawn bars", "a mask of drawn bars")
    height, width = shape
    mask = torch.ones(1, 1, height, width)
    bar_h, bar_w = max(1, height // 16), max(1, width // 16)
    for k in (1, 2, 3):
        top = k * height // 4 - bar_h // 2
        mask[..., top:top + bar_h, :] = 0
    for k in (1, 2):
        left = k * width // 3 - bar_w // 2
        mask[..., :, left:left + bar_w] = 0
    return mask
