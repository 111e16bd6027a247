"""Grey conversion as the reference does it (MATLAB ``rgb2gray`` weights; SPEC §5, step 1)."""

from __future__ import annotations

from torch import Tensor

from .._checks import as_batched_image

__all__ = ["to_grey"]

#: ITU-R BT.601 luma weights used by the reference (MATLAB ``rgb2gray``).
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_grey(image: Tensor) -> Tensor:
    """Grey version of an image, as the reference converts it (SPEC §5, step 1).

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W) or (C, H, W), C in {1, 3}, floating, in [0, 1]
        Colour images are converted; grey images pass through unchanged.

    Returns
    -------
    Tensor, shape (B, 1, H, W)
        ``clip(0.2989 R + 0.5870 G + 0.1140 B, 0, 1)`` for colour input, same device and dtype.

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not a floating tensor of shape (B, C, H, W) or (C, H, W) with C in {1, 3}.

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(2, 3, 4, 4)
    >>> to_grey(x).shape
    torch.Size([2, 1, 4, 4])
    >>> bool(torch.allclose(to_grey(x), torch.full((2, 1, 4, 4), 0.9999)))
    True
    """
    return _to_grey(as_batched_image(image, "image"))


def _to_grey(image: Tensor) -> Tensor:
    if image.shape[1] == 1:
        return image
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return (GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b).clamp_(0.0, 1.0)
