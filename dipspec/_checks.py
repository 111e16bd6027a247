"""Validation shared by the public entry points (messages are built only on failure)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["as_batched_image", "check_image", "check_lambda", "check_sigma"]


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
    """Return λ as a float, or ``None`` for "no control" (``None``, 0 or inf)."""
    if lipschitz_lambda is None:
        return None
    value = float(lipschitz_lambda)
    if value == 0.0 or value == float("inf"):
        return None
    if not value > 0.0:
        raise ValueError(
            f"lipschitz_lambda must be > 0 (or None/0/inf for no control), got {lipschitz_lambda}; "
            "the paper uses values between 1 and 3"
        )
    return value


def check_sigma(gaussian_sigma: float) -> float:
    """Return σ as a float after checking σ ≥ 0."""
    value = float(gaussian_sigma)
    if not value >= 0.0:
        raise ValueError(
            f"gaussian_sigma must be >= 0 (0 is the delta kernel), got {gaussian_sigma}; "
            "the paper uses 0.1-1.0"
        )
    return value


