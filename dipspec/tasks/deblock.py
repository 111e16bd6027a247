"""JPEG deblocking: a Pillow JPEG round trip, identity operator (SPEC §8)."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._checks import as_batched_image, check_pixels
from .base import Task, _reject_tensor

__all__ = ["Deblock", "jpeg_compress"]


def jpeg_compress(x: Tensor, quality: int = 10) -> Tensor:
    """JPEG round trip with Pillow (``quality``, ``optimize=True``, ``progressive=True``).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W)
        Image in [0, 1], C = 1 (encoded as 8-bit grey, mode ``L``) or C = 3 (mode ``RGB``).
    quality : int, default 10
        Pillow JPEG quality in 1..95 (the paper uses 10, 20 and 30).

    Returns
    -------
    Tensor, shape (B, C, H, W)
        Decoded image, a multiple of 1/255, on ``x``'s device and dtype.

    Notes
    -----
    The image is quantised to 8 bits with rounding (``round(255 x)``, not truncation), encoded
    in memory and decoded again; each image of the batch is encoded separately. Colour images use
    Pillow's default 4:2:0 chroma subsampling. SPEC §8 (JPEG deblocking).

    Examples
    --------
    >>> x = torch.rand(1, 3, 16, 16)
    >>> y = jpeg_compress(x, quality=10)
    >>> y.shape, bool(torch.allclose(y * 255, (y * 255).round(), atol=1e-4))
    (torch.Size([1, 3, 16, 16]), True)
    """
    x = check_pixels(as_batched_image(x, "x"), "x")
    quality = _check_quality(quality)
    eight_bit = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    out = []
    for image in eight_bit:
        if image.shape[0] == 1:
            pil = Image.fromarray(image[0].numpy(), mode="L")
        else:
            pil = Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB")
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            array = np.array(decoded.convert(pil.mode))
        tensor = torch.from_numpy(array)
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        out.append(tensor)
    return (torch.stack(out).to(dtype=x.dtype) / 255).to(device=x.device)


def _check_quality(quality: int) -> int:
    _reject_tensor(quality, "quality")
    if isinstance(quality, bool) or int(quality) != quality or not 1 <= int(quality) <= 95:
        raise ValueError(
            f"quality must be an integer JPEG quality in 1..95, got {quality}; "
            "the paper uses 10, 20 and 30"
        )
    return int(quality)


class Deblock(Task):
    """JPEG deblocking: ``y`` = Pillow JPEG of ``x`` at ``quality``, ``A`` = identity (SPEC §8).

    Parameters
    ----------
    quality : int, default 10
        JPEG quality in 1..95 (paper: 10, 20, 30); see `jpeg_compress`.
    clean, observation, seed
        See `Task` (the degradation is deterministic; ``seed`` is unused).

    Examples
    --------
    >>> task = Deblock(quality=10, clean=torch.rand(1, 1, 16, 16))
    >>> task.observation.shape, task.name
    (torch.Size([1, 1, 16, 16]), 'deblock')
    """

    name = "deblock"
    default_lipschitz_lambda = 1.4
    default_iterations = 10_000
    backtracking = True

    def __init__(
        self,
        quality: int = 10,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.quality = _check_quality(quality)
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return jpeg_compress(x, self.quality)

    def _parameters(self) -> str:
        return f"quality={self.quality}"
