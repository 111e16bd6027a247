"""Synthetic test images for the trajectory experiment of Chakrabarty & Maji (SPEC §9).

The image is a smooth scene — diagonal grey stripes and a dark triangle — plus, in one corner,
a square of fine horizontal lines: a pure high-frequency pattern whose side is swept to add
controlled amounts of high frequencies. Generated here (tensors in, tensors out), never shipped.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["CORNERS", "pattern_mask", "stripes_and_lines", "sweep_images"]

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (a fraction of the image side), got {value}")
    return value


def pattern_mask(size: int | tuple[int, int], pattern_fraction: float,
                 corner: str = "top-left") -> Tensor:
    """0/1 mask ``(1, 1, H, W)`` of the square of lines, side ``pattern_fraction · min(H, W)``.

    Examples
    --------
    >>> pattern_mask(10, 0.5).sum().item()
    25.0
    """
    height, width = (size, size) if isinstance(size, int) else size
    fraction = _check_fraction(pattern_fraction, "pattern_fraction")
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS}, got {corner!r}")
    side = int(round(fraction * min(height, width)))
    mask = torch.zeros(1, 1, height, width)
    rows = slice(0, side) if corner.startswith("top") else slice(height - side, height)
    cols = slice(0, side) if corner.endswith("left") else slice(width - side, width)
    if side:
        mask[:, :, rows, cols] = 1.0
    return mask


def stripes_and_lines(size: int | tuple[int, int] = 64, pattern_fraction: float = 0.2,
                      stripe_period: float | None = None, line_period: int = 2,
                      corner: str = "top-left", channels: int = 1,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """Diagonal grey stripes, a dark triangle and a square of fine horizontal lines in a corner.

    Parameters
    ----------
    size : int or (int, int)
        ``(H, W)`` (an int for a square image).
    pattern_fraction : float in [0, 1]
        Side of the square of lines as a fraction of ``min(H, W)`` (0: no lines; 1: the lines
        cover the whole image).
    stripe_period : float, optional
        Period of the diagonal stripes in pixels, measured along each axis (default
        ``min(H, W) / 4``: four stripes across, a low frequency).
    line_period : int
        Period of the horizontal lines in rows (2: alternate black and white rows, the highest
        vertical frequency).
    corner : {"top-left", "top-right", "bottom-left", "bottom-right"}
    channels : {1, 3}
        Grey, or the same grey image in three channels.
    dtype : torch.dtype

    Returns
    -------
    Tensor, shape (1, channels, H, W), in [0, 1]

    Notes
    -----
    The stripes are sinusoidal, ``0.5 + 0.25 sin(2π (x + y) / stripe_period)``, so the smooth
    part of the image holds only low frequencies besides the triangle's edges. The triangle
    (value 0.1) has its vertices at (0.55, 0.9), (0.9, 0.9) and (0.9, 0.45) of (column, row)
    in the image's unit square, away from the top-left corner used by default for the lines.
    The lines alternate 0 and 1 with period ``line_period`` rows.

    Examples
    --------
    >>> x = stripes_and_lines(32, pattern_fraction=0.25)
    >>> x.shape, bool(x.min() >= 0), bool(x.max() <= 1)
    (torch.Size([1, 1, 32, 32]), True, True)
    >>> bool(torch.equal(x[0, 0, :2, :2], torch.tensor([[0.0, 0.0], [1.0, 1.0]])))
    True
    """
    height, width = (size, size) if isinstance(size, int) else size
    if height < 4 or width < 4:
        raise ValueError(f"size must be at least 4x4, got {height}x{width}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if isinstance(line_period, bool) or not isinstance(line_period, int) or line_period < 2:
        raise ValueError(f"line_period must be an int >= 2 (rows per line pair), got "
                         f"{line_period!r}")
    period = min(height, width) / 4 if stripe_period is None else float(stripe_period)
    if not period > 0:
        raise ValueError(f"stripe_period must be > 0 pixels, got {stripe_period}")
    rows = torch.arange(height, dtype=torch.float64)[:, None]
    cols = torch.arange(width, dtype=torch.float64)[None, :]
    image = 0.5 + 0.25 * torch.sin(2 * math.pi * (rows + cols) / period)
    # Dark triangle: below the line from (0.55, 0.9) to (0.9, 0.45), inside the box up to 0.9.
    u, v = (cols + 0.5) / width, (rows + 0.5) / height
    inside = (u <= 0.9) & (v <= 0.9) & ((u - 0.55) * (0.45 - 0.9) - (v - 0.9) * (0.9 - 0.55) <= 0)
    image = torch.where(inside, torch.full_like(image, 0.1), image)
    lines = ((rows.expand(height, width) % line_period) >= line_period / 2).to(torch.float64)
    mask = pattern_mask((height, width), pattern_fraction, corner)[0, 0].to(torch.float64)
    image = mask * lines + (1 - mask) * image
    return image.clamp(0, 1).to(dtype)[None, None].expand(1, channels, height, width).clone()


def sweep_images(fractions, size: int | tuple[int, int] = 64, **kwargs) -> dict[str, Tensor]:
    """``{"lines 25 %": image, ...}``: :func:`stripes_and_lines` for each pattern fraction.

    Examples
    --------
    >>> list(sweep_images([0.0, 0.5], 16))
    ['lines 0 %', 'lines 50 %']
    """
    return {f"lines {fraction:.0%}".replace("%", " %"): stripes_and_lines(
        size, pattern_fraction=fraction, **kwargs) for fraction in fractions}
