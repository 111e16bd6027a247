"""Lipschitz control of convolutions: the spectral-norm cap λ (SPEC §3).

- :func:`sigma_max` (exact) and :func:`sigma_max_warm` (warm-started power iteration) give the
  largest singular value of a reshaped kernel.
- :func:`lipschitz_normalise` is ``W̄ / max(1, σ_max(W̄)/λ)``; :class:`LipschitzConv2d` and
  :class:`LipschitzConvTranspose2d` apply it at every forward pass.
- :func:`precompute_sigma_max` batches the σ_max of many layers into one solve per shape.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_lambda

__all__ = [
    "LipschitzConv2d",
    "LipschitzConvTranspose2d",
    "SIGMA_METHODS",
    "controlled_layers",
    "lipschitz_divisor",
    "lipschitz_normalise",
    "precompute_sigma_max",
    "set_sigma_method",
    "sigma_max",
    "sigma_max_warm",
]


def sigma_max(weight: Tensor) -> Tensor:
    """Largest singular value of ``weight`` reshaped to ``(out, in·k·k)``, computed exactly.

    The value is the square root of the largest eigenvalue of the small Gram matrix ``W Wᵀ``
    (or ``Wᵀ W``, whichever is smaller), from a symmetric eigensolver — exact up to rounding,
    unlike power iteration, which the authors found inaccurate. No gradient flows through it.
    A leading batch axis of stacked kernels is allowed.

    Parameters
    ----------
    weight : Tensor, shape ``(out, in, k, k)`` or ``(L, out, in, k, k)``

    Returns
    -------
    Tensor
        0-d (or ``(L,)``) tensor on the weight's device.

    Examples
    --------
    >>> w = torch.randn(8, 4, 3, 3, dtype=torch.float64)
    >>> exact = torch.linalg.matrix_norm(w.reshape(8, -1), ord=2)
    >>> bool(torch.isclose(sigma_max(w), exact))
    True
    """
    w = weight.detach()
    return _sigma_max_exact(w.flatten(2) if weight.ndim == 5 else w.flatten(1))


def _exact_arithmetic(x: Tensor):
    """No gradient and no autocast: σ_max stays in the weights' precision under bf16 fits."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _sigma_max_exact(matrices: Tensor) -> Tensor:
    """Core of :func:`sigma_max` on ``(..., r, c)`` matrices."""
    with torch.no_grad(), _exact_arithmetic(matrices):
        # Gram matrices lose half the digits in float32 for the small eigenvalues, not the
        # largest one: its relative error stays at machine precision.
        top = torch.linalg.eigvalsh(_gram(matrices.detach()))[..., -1]
        return top.clamp_min(0).sqrt()


#: How σ_max is computed: ``"exact"`` (symmetric eigensolver every step) or ``"warm"``.
SIGMA_METHODS = ("exact", "warm")
#: Repeated squarings of the Gram matrix per step in :func:`sigma_max_warm` (power 2**14).
WARM_SQUARINGS = 14


def _gram(mat: Tensor) -> Tensor:
    """The smaller Gram matrix of a ``(..., r, c)`` stack: ``M Mᵀ`` if r ≤ c, else ``Mᵀ M``."""
    rows, cols = mat.shape[-2:]
    return mat @ mat.transpose(-1, -2) if rows <= cols else mat.transpose(-1, -2) @ mat


def sigma_max_warm(matrices: Tensor, vectors: Tensor | None = None,
                   squarings: int = WARM_SQUARINGS) -> tuple[Tensor, Tensor]:
    """Largest singular values of a stack of matrices, warm-started from the previous step.

    Power iteration on the Gram matrix ``G`` (of size n = min(r, c)) from last step's top
    eigenvector ``v``, accelerated by repeated squaring: ``u = G^N v`` with ``N = 2**squarings``
    costs ``squarings`` small matrix products and no eigensolver or host sync, then
    ``σ² = uᵀ G u / uᵀ u`` (a Rayleigh quotient, never above the true σ²). Without ``vectors``
    the first call is exact (a symmetric eigensolver) and returns the eigenvectors to carry.

    Parameters
    ----------
    matrices : Tensor, shape ``(L, r, c)``
        The kernels reshaped to matrices (no gradient flows).
    vectors : Tensor, shape ``(L, n)``, optional
        The state returned by the previous call for the same layers.
    squarings : int
        ``N = 2**squarings``; 14 by default.

    Returns
    -------
    sigma : Tensor, shape ``(L,)``
    vectors : Tensor, shape ``(L, n)``
        The new state (unit vectors).

    Notes
    -----
    With ``θ₀`` the angle between ``v`` and the top eigenvector of the current ``G``, the
    relative error of σ² is at most ``tan²θ₀ · max_x x^{2N}(1 − x) ≈ tan²θ₀ / (2eN)``, about
    ``1.1e-5 · tan²θ₀`` for N = 2**14: eigenvalues far below the top are damped by ``x^{2N}``
    and those close to it (a near-degenerate top, where the vector is ill-defined) cost at
    most their distance to it. Between two optimiser steps the kernel moves little, so ``θ₀``
    is small; ``tests/test_sigma_max.py`` checks the error against an SVD at every step of a
    2000-step fit. Cold power iteration (a random ``v``, few steps) is what the authors found
    inaccurate; this is the opposite regime.

    Examples
    --------
    >>> w = torch.randn(3, 16, 40, dtype=torch.float64)
    >>> exact = torch.linalg.matrix_norm(w, ord=2)
    >>> sigma, state = sigma_max_warm(w)                        # first call: exact
    >>> sigma2, _ = sigma_max_warm(w + 1e-3 * torch.randn_like(w), state)
    >>> bool(torch.allclose(sigma, exact)), bool(torch.allclose(sigma2, exact, rtol=1e-2))
    (True, True)
    """
    with torch.no_grad(), _exact_arithmetic(matrices):
        gram = _gram(matrices.detach())
        if vectors is None:
            values, eigenvectors = torch.linalg.eigh(gram)
            return values[..., -1].clamp_min(0).sqrt(), eigenvectors[..., -1]
        # Trace-normalised powers stay in [0, 1] (G is PSD): nothing overflows.
        tiny = torch.finfo(gram.dtype).tiny
        power = gram / _trace(gram).clamp_min(tiny)[..., None, None]
        for _ in range(squarings):
            power = power @ power
            power = power / _trace(power).clamp_min(tiny)[..., None, None]
        u = (power @ vectors.to(gram.dtype)[..., None])[..., 0]
        u = u / torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min(tiny)
        top = (u * (gram @ u[..., None])[..., 0]).sum(-1)
        return top.clamp_min(0).sqrt(), u


def _trace(matrix: Tensor) -> Tensor:
    return matrix.diagonal(dim1=-2, dim2=-1).sum(-1)


def lipschitz_divisor(sigma: Tensor, lipschitz_lambda: float) -> Tensor:
    """``max(1, σ/λ)``: the factor that caps the spectral norm at λ (SPEC §3)."""
    return torch.clamp(sigma / lipschitz_lambda, min=1.0)


def lipschitz_normalise(weight: Tensor, lipschitz_lambda: float | None) -> Tensor:
    """Return ``W̄ / max(1, σ_max(W̄)/λ)``; the divisor carries no gradient (SPEC §3).

    Parameters
    ----------
    weight : Tensor, shape ``(out, in, k, k)``
        The unconstrained kernel W̄.
    lipschitz_lambda : float or None
        λ > 0 and finite; ``None`` (no control) returns ``weight`` unchanged.

    Examples
    --------
    >>> w = 3 * torch.randn(8, 4, 3, 3, dtype=torch.float64)
    >>> capped = lipschitz_normalise(w, 1.5)
    >>> bool(torch.isclose(sigma_max(capped), torch.tensor(1.5, dtype=torch.float64)))
    True
    """
    lam = check_lambda(lipschitz_lambda)
    if lam is None:
        return weight
    return weight / lipschitz_divisor(sigma_max(weight), lam)


def _check_sigma_method(sigma_method: str) -> str:
    if sigma_method not in SIGMA_METHODS:
        raise ValueError(f"sigma_method must be one of {SIGMA_METHODS}, got {sigma_method!r}; "
                         "'exact' solves an eigenproblem every step, 'warm' tracks the top "
                         "singular vector (no eigensolver, no host sync)")
    return sigma_method


def _sigma_for(matrices: Tensor, sigma_method: str,
               vectors: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """σ_max of a ``(L, r, c)`` stack by ``sigma_method``; returns ``(sigma, new_state)``."""
    if sigma_method == "warm":
        return sigma_max_warm(matrices, vectors)
    return _sigma_max_exact(matrices), None


class _LipschitzMixin:
    """Shared state of the controlled convolutions: λ, the σ method and a precomputed σ_max."""

    lipschitz_lambda: float | None
    sigma_method: str
    _sigma_cache: Tensor | None
    _divisor_cache: Tensor | None
    _sigma_vector: Tensor | None

    def _init_lipschitz(self, lipschitz_lambda: float | None, sigma_method: str) -> None:
        self.lipschitz_lambda = check_lambda(lipschitz_lambda)
        self.sigma_method = _check_sigma_method(sigma_method)
        self._sigma_cache = None  # the last σ_max of precompute_sigma_max, for inspection
        self._divisor_cache = None  # its max(1, σ/λ), used (and cleared) by the next forward
        self._sigma_vector = None  # the "warm" method's top singular vector, carried over

    def effective_weight(self) -> Tensor:
        """The kernel actually applied: ``W̄ / max(1, σ/λ)`` (or ``W̄`` without control)."""
        weight = self.weight  # type: ignore[attr-defined]
        if self.lipschitz_lambda is None:
            return weight
        divisor, self._divisor_cache = self._divisor_cache, None
        if divisor is None:
            if self.sigma_method == "exact":
                divisor = lipschitz_divisor(sigma_max(self._matrix_view(weight)),
                                            self.lipschitz_lambda)
            else:
                precompute_sigma_max([self])
                divisor, self._divisor_cache = self._divisor_cache, None
        return weight / divisor

    def _matrix_view(self, weight: Tensor) -> Tensor:
        return weight

    def extra_repr(self) -> str:
        extra = f", lipschitz_lambda={self.lipschitz_lambda}"
        if self.sigma_method != "exact":
            extra += f", sigma_method={self.sigma_method!r}"
        return super().extra_repr() + extra  # type: ignore[misc]


class LipschitzConv2d(_LipschitzMixin, nn.Conv2d):
    """2-D convolution whose reshaped kernel has spectral norm at most λ (SPEC §3).

    Keeps an unconstrained weight W̄ and applies ``W = W̄ / max(1, σ/λ)`` at every forward
    pass, with σ the exact largest singular value of W̄ reshaped to ``(out, in·k·k)`` and no
    gradient through σ. A kernel already below λ is untouched.

    Parameters
    ----------
    in_channels, out_channels, kernel_size
        As :class:`torch.nn.Conv2d`.
    lipschitz_lambda : float or None
        λ > 0; ``None`` (or 0, ``inf``) means no control.
    sigma_method : {"exact", "warm"}
        ``"exact"`` (default): a symmetric eigensolver on the Gram matrix every step.
        ``"warm"``: :func:`sigma_max_warm`, tracking the top singular vector from step to step
        with matrix products only (no eigensolver, no host sync; for GPUs).
    **kwargs
        Passed to :class:`torch.nn.Conv2d` (``padding``, ``bias``, ``padding_mode`` …).

    Notes
    -----
    The cap uses the reshaped-matrix norm of the reference code, which is not the operator norm
    of the convolution (SPEC §3).

    Examples
    --------
    >>> conv = LipschitzConv2d(4, 8, 3, lipschitz_lambda=0.5)
    >>> with torch.no_grad():
    ...     _ = conv.weight.mul_(10)
    >>> bool(sigma_max(conv.effective_weight()) <= 0.5 + 1e-6)
    True
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, lipschitz_lambda=None,
                 sigma_method: str = "exact", **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self._init_lipschitz(lipschitz_lambda, sigma_method)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class LipschitzConvTranspose2d(_LipschitzMixin, nn.ConvTranspose2d):
    """Transposed convolution with the same λ cap (used by the ``deconv`` upsampling mode).

    The kernel ``(in, out, k, k)`` is reshaped to ``(out, in·k·k)`` as for
    :class:`LipschitzConv2d`; ``lipschitz_lambda`` and ``sigma_method`` as there.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, lipschitz_lambda=None,
                 sigma_method: str = "exact", **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self._init_lipschitz(lipschitz_lambda, sigma_method)

    def _matrix_view(self, weight: Tensor) -> Tensor:
        return weight.transpose(0, 1)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        return F.conv_transpose2d(x, self.effective_weight(), self.bias, self.stride,
                                  self.padding, self.output_padding, self.groups, self.dilation)


def precompute_sigma_max(layers: Iterable[nn.Module]) -> None:
    """Compute σ_max of every controlled layer in one batched solve per kernel shape.

    Each layer uses (and clears) the stored divisor ``max(1, σ/λ)`` at its next forward
    pass, so a model can call this once per step instead of paying one small eigensolve per
    layer. Layers with
    ``sigma_method="warm"`` also carry their top singular vector to the next call.
    """
    groups: dict[tuple, list[_LipschitzMixin]] = {}
    for layer in layers:
        if isinstance(layer, _LipschitzMixin) and layer.lipschitz_lambda is not None:
            key = (tuple(layer._matrix_view(layer.weight).shape), layer.weight.device,
                   layer.weight.dtype, layer.sigma_method)
            groups.setdefault(key, []).append(layer)
    for (_, _, _, method), members in groups.items():
        stacked = torch.stack([m._matrix_view(m.weight) for m in members]).detach().flatten(2)
        vectors = _stacked_vectors(members, stacked) if method == "warm" else None
        sigmas, vectors = _sigma_for(stacked, method, vectors)
        # one division and one clamp for the whole group, not one per layer
        lambdas = torch.tensor([m.lipschitz_lambda for m in members], dtype=sigmas.dtype,
                               device=sigmas.device)
        divisors = torch.clamp(sigmas / lambdas, min=1.0)
        for i, (member, sigma, divisor) in enumerate(zip(members, sigmas.unbind(0),
                                                          divisors.unbind(0))):
            member._sigma_cache, member._divisor_cache = sigma, divisor
            if vectors is not None:
                member._sigma_vector = vectors[i]


def _stacked_vectors(members: list[_LipschitzMixin], like: Tensor) -> Tensor | None:
    """The members' carried vectors as one ``(L, n)`` tensor, or None if any is missing."""
    vectors = [m._sigma_vector for m in members]
    if any(v is None or v.shape[-1] != min(like.shape[-2:]) for v in vectors):
        return None
    return torch.stack(vectors).to(device=like.device, dtype=like.dtype)


def set_sigma_method(module: nn.Module, sigma_method: str) -> nn.Module:
    """Set ``sigma_method`` on every Lipschitz-controlled layer of ``module``; returns it.

    Examples
    --------
    >>> net = nn.Sequential(LipschitzConv2d(2, 4, 3, lipschitz_lambda=1.0))
    >>> set_sigma_method(net, "warm")[0].sigma_method
    'warm'
    """
    method = _check_sigma_method(sigma_method)
    for layer in module.modules():
        if isinstance(layer, _LipschitzMixin):
            layer.sigma_method = method
            layer._sigma_vector = None
    return module


def controlled_layers(model: nn.Module) -> list[nn.Module]:
    """The Lipschitz-controlled layers of ``model`` that have a λ set."""
    return [m for m in model.modules()
            if isinstance(m, (LipschitzConv2d, LipschitzConvTranspose2d))
            and m.lipschitz_lambda is not None]
