"""Validation shared by the public entry points (messages are built only on failure)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "RANGE_TOLERANCE",
    "as_batched_image",
    "check_image",
    "check_lambda",
    "check_pixels",
    "check_sigma",
]


def check_image(x: Tensor, name: str = "image") -> None:
    """Raise a clear error unless ``x`` is a floating ``(B, C, H, W)`` tensor with C in (1, 3)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            "convert with torch.as_tensor(...) or load it with dipspec.data.load_image"
        )
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must be (B, C, H, W) with C in (1, 3), got {tuple(x.shape)}; "
            "add a batch axis with x[None] or put channels first with permute"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor in [0, 1], got dtype {x.dtype}; "
            "use x.float() / 255 for 8-bit images"
        )


def as_batched_image(x: Tensor, name: str = "image") -> Tensor:
    """Accept ``(C, H, W)`` or ``(B, C, H, W)``; return ``(B, C, H, W)`` after checking it."""
    if isinstance(x, Tensor) and x.ndim == 3:
        x = x[None]
    check_image(x, name)
    return x


def check_lambda(lipschitz_lambda: float | None) -> float | None:
    """Return λ as a float, or ``None`` for "no control" (plain DIP).

    Only ``None`` means no control: 0, negative, NaN and inf are rejected, so a typo never
    silently turns the control off.

    Examples
    --------
    >>> check_lambda(1.4), check_lambda(None)
    (1.4, None)
    >>> check_lambda(0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: lipschitz_lambda must be a positive finite number, or None for plain DIP, got 0.0...
    """
    if lipschitz_lambda is None:
        return None
    value = _real(lipschitz_lambda, "lipschitz_lambda", "a number such as 1.4, or None")
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(
            "lipschitz_lambda must be a positive finite number, or None for plain DIP, "
            f"got {lipschitz_lambda!r}; the paper uses values between 1 and 3"
        )
    return value


def check_sigma(gaussian_sigma: float) -> float:
    """Return σ as a float after checking that it is finite and ≥ 0."""
    value = _real(gaussian_sigma, "gaussian_sigma", "a number such as 0.5")
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(
            f"gaussian_sigma must be >= 0 and finite (0 is the delta kernel), got "
            f"{gaussian_sigma!r}; the paper uses 0.1-1.0"
        )
    return value


def _real(value: object, name: str, expected: str) -> float:
    """``float(value)`` for a real number; a clear TypeError for anything else."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}; pass {expected}"
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__}; pass {expected}"
        ) from None


#: Values this far outside [0, 1] count as rounding (e.g. resampling overshoot) and are clamped.
RANGE_TOLERANCE = 1e-3


def check_pixels(x: Tensor, name: str = "image") -> Tensor:
    """Check that every value of ``x`` is finite and in [0, 1]; return ``x`` (clamped if needed).

    One host sync, so call it once at an entry point (a task's constructor), never per step.
    Values within `RANGE_TOLERANCE` of the range are rounding and are clamped; anything else
    (NaN, inf, a 0-255 or 16-bit scale, negative values) raises ``ValueError`` naming ``name``.

    Examples
    --------
    >>> import torch
    >>> check_pixels(torch.tensor([[[[0.0, 1.0005]]]])).tolist()
    [[[[0.0, 1.0]]]]
    >>> check_pixels(torch.tensor([[[[0.0, 200.0]]]]), "clean")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: clean must lie in [0, 1], got values in [0, 200], which looks like 0-255 values...
    """
    if x.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(x.shape)}; pass an image with pixels")
    low, high = torch.stack(torch.aminmax(x.detach())).tolist()  # one sync; NaN propagates
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(_non_finite_message(x, name))
    if low >= 0.0 and high <= 1.0:
        return x
    if low >= -RANGE_TOLERANCE and high <= 1.0 + RANGE_TOLERANCE:
        return x.clamp(0.0, 1.0)
    raise ValueError(_range_message(low, high, name))


def _non_finite_message(x: Tensor, name: str) -> str:
    nan = int(torch.isnan(x).sum())
    inf = int(torch.isinf(x).sum())
    found = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "inf")) if n)
    return (
        f"{name} contains {found} value(s) among {x.numel()}; every pixel must be a finite "
        "number in [0, 1]: repair or re-export the image, or replace them with "
        "torch.nan_to_num(x, nan=0.0).clamp(0, 1)"
    )


def _range_message(low: float, high: float, name: str) -> str:
    got = f"{name} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]"
    if high > 255.0 + RANGE_TOLERANCE and low >= -RANGE_TOLERANCE:
        return f"{got}, which looks like 16-bit 0-65535 values; divide by 65535 (x / 65535)"
    if high > 2.0 and low >= -RANGE_TOLERANCE:
        return f"{got}, which looks like 0-255 values; divide by 255 (x / 255)"
    if high > 1.0 + RANGE_TOLERANCE and low >= -RANGE_TOLERANCE:
        return (
            f"{got}: values above 1; clamp with x.clamp(0, 1) if they are overshoot (e.g. from "
            "resampling), or divide by 255 if the image holds 0-255 values"
        )
    if low >= -1.0 - RANGE_TOLERANCE and high <= 1.0 + RANGE_TOLERANCE:
        return f"{got}: negative values; if the image is in [-1, 1], map it with (x + 1) / 2"
    return f"{got}; rescale it to [0, 1], e.g. (x - x.min()) / (x.max() - x.min())"
