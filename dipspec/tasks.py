"""Restoration tasks: a degradation ``degrade(x, generator) -> y`` and an operator ``A(x)``.

A task knows no network. The fitting loop forms ``mean((task.A(f(z)) - task.observation) ** 2)``
and shows the user ``task.finalize(f(z))`` (SPEC §1, §8). Every degradation is also available
as a pure function (`add_gaussian_noise`, `jpeg_compress`, `bernoulli_mask`,
`lanczos2_downsample`, `enhance_details`).

Examples
--------
>>> x = torch.rand(1, 3, 32, 32)
>>> task = make_task("denoise", clean=x, seed=0)
>>> task.observation.shape, task.output_size
(torch.Size([1, 3, 32, 32]), (32, 32))
>>> bool(torch.equal(task.A(x), x))
True
"""

from __future__ import annotations

import copy
import io
import math
import warnings
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from dipspec._checks import as_batched_image

__all__ = [
    "TASKS",
    "Deblock",
    "Denoise",
    "Enhance",
    "Inpaint",
    "SuperResolve",
    "Task",
    "add_gaussian_noise",
    "bernoulli_mask",
    "enhance_details",
    "jpeg_compress",
    "lanczos2_downsample",
    "lanczos2_kernel",
    "make_task",
]


# --------------------------------------------------------------------------------------------
# validation helpers (messages are built only on failure)
# --------------------------------------------------------------------------------------------


def _check_range(x: Tensor, name: str) -> None:
    """Raise unless every value of ``x`` lies in [0, 1] (one host sync: entry points only)."""
    low, high = torch.aminmax(x.detach())
    if bool(low < 0) or bool(high > 1):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{float(low):.4g}, {float(high):.4g}]; "
            "divide 8-bit data by 255 or clamp with x.clamp(0, 1)"
        )


def _image(x: Tensor, name: str, check_range: bool = True) -> Tensor:
    x = as_batched_image(x, name)
    if check_range:
        _check_range(x, name)
    return x


def _noise_dtype(dtype: torch.dtype) -> torch.dtype:
    # float64 images get float64 noise; half/bfloat16 images get float32 noise, then cast.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _random_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


# --------------------------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------------------------


def add_gaussian_noise(
    x: Tensor, sigma: float = 25 / 255, generator: torch.Generator | None = None
) -> Tensor:
    """Additive white Gaussian noise, clipped to [0, 1]: ``clip(x + N(0, sigma^2), 0, 1)``.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W)
        Clean image in [0, 1].
    sigma : float, default 25/255
        Noise standard deviation on the [0, 1] scale (the paper's σ = 25 on the 8-bit scale).
    generator : torch.Generator, optional
        Source of randomness. The noise is drawn on the generator's device (CPU by default)
        and then moved to ``x``'s device, so a CPU generator gives the same numbers on any device.

    Returns
    -------
    Tensor, shape (B, C, H, W)
        Noisy image in [0, 1], on ``x``'s device and dtype.

    Notes
    -----
    SPEC §8 (denoising), as the reference computes it:
    ``np.clip(x + np.random.normal(scale=sigma, size=x.shape), 0, 1)``.

    Examples
    --------
    >>> x = torch.full((1, 1, 8, 8), 0.5)
    >>> y = add_gaussian_noise(x, 0.1, torch.Generator().manual_seed(0))
    >>> y.shape, bool(y.min() >= 0) and bool(y.max() <= 1)
    (torch.Size([1, 1, 8, 8]), True)
    """
    x = as_batched_image(x, "x")
    noise = torch.randn(
        x.shape,
        generator=generator,
        dtype=_noise_dtype(x.dtype),
        device=_random_device(generator),
    )
    return (x + sigma * noise.to(device=x.device, dtype=x.dtype)).clamp(0, 1)


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
    x = as_batched_image(x, "x")
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


def bernoulli_mask(
    height: int,
    width: int,
    keep: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Random pixel mask, each pixel kept (1) with probability ``keep``, else dropped (0).

    Parameters
    ----------
    height, width : int
        Mask size.
    keep : float, default 0.5
        Probability in (0, 1] that a pixel is observed (the paper uses 0.5).
    generator : torch.Generator, optional
        Source of randomness; the mask is drawn on its device (CPU by default), then moved.
    device, dtype : optional
        Where the returned mask lives, and its floating dtype.

    Returns
    -------
    Tensor, shape (1, 1, height, width)
        0/1 float mask that broadcasts over batch and channels.

    Notes
    -----
    The paper's own Bernoulli masks were drawn with NumPy (seed 100) and ship as HDF5 files:
    load them with ``dipspec.data.paper_mask`` to reproduce its inpainting numbers.

    Examples
    --------
    >>> m = bernoulli_mask(64, 64, keep=0.5, generator=torch.Generator().manual_seed(0))
    >>> m.shape, abs(float(m.mean()) - 0.5) < 0.05
    (torch.Size([1, 1, 64, 64]), True)
    """
    keep = _check_keep(keep)
    uniform = torch.rand(
        (1, 1, int(height), int(width)), generator=generator, device=_random_device(generator)
    )
    return (uniform < keep).to(dtype=dtype, device=device)


def lanczos2_kernel(factor: int) -> Tensor:
    """The Lanczos-2 anti-aliasing kernel of Ulyanov et al.'s ``Downsampler`` (phase 0.5).

    Parameters
    ----------
    factor : int
        Downsampling factor, ≥ 2.

    Returns
    -------
    Tensor, shape (4 factor, 4 factor), float64
        Separable kernel normalised to sum 1.

    Notes
    -----
    Reproduces ``get_kernel(factor, 'lanczos', phase=0.5, kernel_width=4 factor + 1, support=2)``
    of ``models/downsampler.py`` in the deep-image-prior repository: with centre
    c = (4 factor + 2) / 2 and d_i = |i + 0.5 − c| / factor for i = 1 … 4 factor,
    k(d) = 2 sin(π d) sin(π d / 2) / (π² d²) (k(0) = 1), K[i, j] = k(d_i) k(d_j) / Σ.
    The phase-0.5 kernel is one pixel narrower than ``kernel_width``, as in the reference.

    References
    ----------
    Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018 / IJCV 2020.

    Examples
    --------
    >>> k = lanczos2_kernel(4)
    >>> k.shape, bool(torch.isclose(k.sum(), torch.tensor(1.0, dtype=k.dtype)))
    (torch.Size([16, 16]), True)
    """
    factor = _check_factor(factor)
    support = 2
    kernel_width = 2 * support * factor + 1
    center = (kernel_width + 1) / 2.0
    index = np.arange(1, kernel_width, dtype=np.float64)  # phase 0.5: width - 1 taps
    distance = np.abs(index + 0.5 - center) / factor
    with np.errstate(divide="ignore", invalid="ignore"):
        taps = (
            support
            * np.sin(np.pi * distance)
            * np.sin(np.pi * distance / support)
            / (np.pi * np.pi * distance * distance)
        )
    taps = np.where(distance == 0, 1.0, taps)
    kernel = np.outer(taps, taps)
    kernel /= kernel.sum()
    return torch.from_numpy(kernel)


def _lanczos2_padding(factor: int) -> tuple[int, int, int, int]:
    # Ulyanov's preserve_size pad for an even-sized kernel is (size - factor) / 2 = 1.5 factor on
    # each side. For odd factors that is not an integer (the reference truncates it and loses one
    # output pixel); we pad floor / ceil so that the output is exactly H / factor.
    total = 3 * factor
    before, after = total // 2, total - total // 2
    return (before, after, before, after)


def _lanczos2_downsample(x: Tensor, weight: Tensor, factor: int) -> Tensor:
    """Core of `lanczos2_downsample`: ``weight`` is (C, 1, k, k) on ``x``'s device and dtype."""
    padded = F.pad(x, _lanczos2_padding(factor), mode="replicate")
    return F.conv2d(padded, weight, stride=factor, groups=x.shape[1])


def lanczos2_downsample(x: Tensor, factor: int = 4) -> Tensor:
    """Downsample by ``factor`` with the Lanczos-2 ``Downsampler`` of Ulyanov et al.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W) or (C, H, W)
        Image; H and W should be multiples of ``factor``.
    factor : int, default 4
        Downsampling factor, ≥ 2 (the paper's super-resolution uses 4 and 8).

    Returns
    -------
    Tensor, shape (B, C, H // factor, W // factor)

    Notes
    -----
    ``Downsampler(n_planes=C, factor, kernel_type='lanczos2', phase=0.5, preserve_size=True)``:
    replication padding of 1.5 × factor pixels per side, then a per-channel convolution with
    `lanczos2_kernel` at stride ``factor``. For odd factors the padding is split floor / ceil so
    that the output keeps H / factor rows (the reference loses one). It is linear and maps a
    constant image to the same constant. SPEC §8 (super-resolution).

    Examples
    --------
    >>> x = torch.full((1, 3, 32, 32), 0.25)
    >>> y = lanczos2_downsample(x, 4)
    >>> y.shape, bool(torch.allclose(y, torch.full_like(y, 0.25)))
    (torch.Size([1, 3, 8, 8]), True)
    """
    x = as_batched_image(x, "x")
    factor = _check_factor(factor)
    weight = lanczos2_kernel(factor).to(device=x.device, dtype=x.dtype)
    weight = weight.expand(x.shape[1], 1, *weight.shape).contiguous()
    return _lanczos2_downsample(x, weight, factor)


def enhance_details(x: Tensor, output: Tensor) -> Tensor:
    """Detail enhancement: ``clip(x + clip(x − output, 0, 1), 0, 1)`` (SPEC §8).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        The image being enhanced (the observation).
    output : Tensor, shape (B, C, H, W)
        The network's (smooth) fit of ``x``.

    Returns
    -------
    Tensor, shape (B, C, H, W)
        The enhanced image in [0, 1].

    Notes
    -----
    Reference quirk: only the positive part of the detail layer ``x − output`` is added back.

    Examples
    --------
    >>> x = torch.tensor([0.5, 0.5]).reshape(1, 1, 1, 2)
    >>> f = torch.tensor([0.25, 0.75]).reshape(1, 1, 1, 2)
    >>> enhance_details(x, f).flatten().tolist()
    [0.75, 0.5]
    """
    detail = (x - output).clamp(0, 1)
    return (x + detail).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# parameter checks
# --------------------------------------------------------------------------------------------


def _reject_tensor(value: Any, parameter: str) -> None:
    if isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(
            f"{parameter} must be a number, got a {type(value).__name__}; "
            "pass the image as a keyword: clean=... or observation=..."
        )


def _check_sigma(sigma: float) -> float:
    _reject_tensor(sigma, "sigma")
    value = float(sigma)
    if not value >= 0.0 or math.isinf(value):
        raise ValueError(
            f"sigma must be a finite noise std >= 0 on the [0, 1] scale, got {sigma}; "
            "for the paper's sigma = 25 (8-bit scale) pass sigma=25/255"
        )
    return value


def _check_quality(quality: int) -> int:
    _reject_tensor(quality, "quality")
    if isinstance(quality, bool) or int(quality) != quality or not 1 <= int(quality) <= 95:
        raise ValueError(
            f"quality must be an integer JPEG quality in 1..95, got {quality}; "
            "the paper uses 10, 20 and 30"
        )
    return int(quality)


def _check_keep(keep: float) -> float:
    _reject_tensor(keep, "keep")
    value = float(keep)
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"keep must be the probability in (0, 1] that a pixel is observed, got {keep}; "
            "the paper's Bernoulli masks keep half the pixels: keep=0.5"
        )
    return value


def _check_factor(factor: int) -> int:
    _reject_tensor(factor, "factor")
    if isinstance(factor, bool) or int(factor) != factor or int(factor) < 2:
        raise ValueError(
            f"factor must be an integer >= 2, got {factor}; the paper uses factor=4 or factor=8"
        )
    return int(factor)


def _as_mask(mask: Any) -> Tensor:
    """Convert a user mask (tensor, array, bool/int/float) to a 0/1 float (B, 1|C, H, W) tensor."""
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    elif not isinstance(mask, Tensor):
        raise TypeError(
            f"mask must be a torch.Tensor or numpy array, got {type(mask).__name__}; "
            "load the paper's masks with dipspec.data.paper_mask"
        )
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        if mask.shape[0] != 1:
            raise ValueError(
                f"a 3-D mask must be (1, H, W), got {tuple(mask.shape)}; "
                "pass (H, W), (1, H, W) or (B, 1, H, W)"
            )
        mask = mask[None]
    elif mask.ndim != 4:
        raise ValueError(f"mask must be (H, W), (1, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        mask = mask.to(torch.float32)
    elif not mask.is_floating_point():
        mask = mask.to(torch.float32)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(
            "mask must contain only 0 (missing pixel) and 1 (observed pixel); "
            "threshold it first, e.g. mask = (mask > 0.5).float()"
        )
    return mask


# --------------------------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------------------------


class Task:
    """A restoration task: a degradation, its forward operator and the observed image.

    Parameters
    ----------
    clean : Tensor, shape (B, C, H, W) or (C, H, W), optional
        The clean image in [0, 1], C in (1, 3). With no ``observation``, the observation is made
        from it with ``degrade(clean, torch.Generator().manual_seed(seed))``. It also lets the
        fitting loop report PSNR.
    observation : Tensor, shape (B, C, h, w) or (C, h, w), optional
        A degraded image to restore (e.g. a real noisy photo), used as it is.
    seed : int, default 0
        Seed of the CPU generator that makes the observation from ``clean``.

    Attributes
    ----------
    name : str
        ``'denoise'``, ``'deblock'``, ``'inpaint'``, ``'super_resolve'`` or ``'enhance'``.
    default_lipschitz_lambda : float
        The paper's λ for this task (SPEC §3).
    default_iterations : int
        The paper's iteration budget (SPEC §1, §8).
    backtracking : bool
        Whether the paper restores a snapshot after a PSNR collapse (SPEC §7).

    Notes
    -----
    With neither ``clean`` nor ``observation`` the task is an operator configuration:
    `degrade` and `A` work, but `observation` raises.
    """

    name: ClassVar[str] = ""
    default_lipschitz_lambda: ClassVar[float] = 1.4
    default_iterations: ClassVar[int] = 10_000
    backtracking: ClassVar[bool] = False

    def __init__(
        self,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.seed = int(seed)
        self._clean = None if clean is None else _image(clean, "clean")
        if observation is not None:
            self._observation = _image(observation, "observation")
            self._after_observation(self._observation)
            if self._clean is not None:
                self._check_pair(self._clean, self._observation)
        elif self._clean is not None:
            generator = torch.Generator().manual_seed(self.seed)
            self._observation = self._degrade(self._clean, generator)
        else:
            self._observation = None

    # -- hooks for subclasses ---------------------------------------------------------------

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return x

    def _after_observation(self, observation: Tensor) -> None:
        """Called when a user-supplied observation is stored (subclasses may validate)."""

    def _scale(self) -> int:
        return 1

    def _check_pair(self, clean: Tensor, observation: Tensor) -> None:
        s = self._scale()
        expected = (
            observation.shape[0],
            observation.shape[1],
            observation.shape[2] * s,
            observation.shape[3] * s,
        )
        if tuple(clean.shape) != expected:
            raise ValueError(
                f"clean {tuple(clean.shape)} does not match observation "
                f"{tuple(observation.shape)} for task '{self.name}' (expected clean {expected}); "
                "pass the clean image the observation was made from, or leave clean=None"
            )

    def _parameters(self) -> str:
        return ""

    # -- public interface ---------------------------------------------------------------------

    def degrade(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Degrade a clean image: ``y = degrade(x)`` (random tasks use ``generator``).

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W) or (C, H, W)
            Clean image in [0, 1].
        generator : torch.Generator, optional
            Source of randomness (CPU generators give identical numbers on every device).

        Returns
        -------
        Tensor, shape (B, C, h, w)
            The observation, on ``x``'s device and dtype.
        """
        return self._degrade(_image(x, "x"), generator)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - the operator's conventional name
        """Forward operator applied to the network output inside the loss (identity here).

        Parameters
        ----------
        x : Tensor, shape (B, C, H, W)
            Network output, of size `output_size`.

        Returns
        -------
        Tensor, shape of `observation`
        """
        return x

    def finalize(self, output: Tensor) -> Tensor:
        """The restoration the user sees for a network output (identity here)."""
        return output

    @property
    def clean(self) -> Tensor | None:
        """The clean image (B, C, H, W), or ``None`` when only an observation was given."""
        return self._clean

    @property
    def observation(self) -> Tensor:
        """The degraded image y (B, C, h, w) the network is fitted to."""
        if self._observation is None:
            raise ValueError(
                f"this {type(self).__name__} task has no observation; "
                f"pass clean=... or observation=..., e.g. {type(self).__name__}(clean=image)"
            )
        return self._observation

    @property
    def reference(self) -> Tensor:
        """The FBC reference: the degraded observation, not the clean image (SPEC §5)."""
        return self.observation

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) the network output must have."""
        h, w = self.observation.shape[-2:]
        s = self._scale()
        return (int(h) * s, int(w) * s)

    @property
    def channels(self) -> int:
        """Number of image channels, 1 (grey) or 3 (colour)."""
        return int(self.observation.shape[1])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy of the task with its tensors on ``device`` (and ``dtype`` if given)."""
        moved = copy.copy(self)
        for attribute in ("_clean", "_observation", "_mask"):
            value = getattr(self, attribute, None)
            if isinstance(value, Tensor):
                setattr(moved, attribute, value.to(device=device, dtype=dtype))
        return moved

    def __repr__(self) -> str:
        parts = [p for p in (self._parameters(),) if p]
        if self._observation is not None:
            parts.append(f"observation={tuple(self._observation.shape)}")
        if self._clean is not None:
            parts.append(f"clean={tuple(self._clean.shape)}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Denoise(Task):
    """Gaussian denoising: ``y = clip(x + N(0, sigma^2), 0, 1)``, ``A`` = identity (SPEC §8).

    Parameters
    ----------
    sigma : float, default 25/255
        Noise standard deviation on the [0, 1] scale.
    clean, observation, seed
        See `Task`.

    Examples
    --------
    >>> x = torch.full((1, 1, 32, 32), 0.5)
    >>> task = Denoise(25 / 255, clean=x, seed=1)
    >>> task.observation.shape, task.default_lipschitz_lambda, task.backtracking
    (torch.Size([1, 1, 32, 32]), 1.4, True)
    """

    name = "denoise"
    default_lipschitz_lambda = 1.4
    default_iterations = 10_000
    backtracking = True

    def __init__(
        self,
        sigma: float = 25 / 255,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.sigma = _check_sigma(sigma)
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return add_gaussian_noise(x, self.sigma, generator)

    def _parameters(self) -> str:
        return f"sigma={self.sigma:.4g}"


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


class Inpaint(Task):
    """Inpainting: ``y = x ⊙ m`` and ``A(x) = x ⊙ m`` with a 0/1 mask ``m`` (SPEC §8).

    Parameters
    ----------
    mask : Tensor or ndarray, optional
        0/1 mask (1 = observed pixel), (H, W), (1, H, W) or (1 | B, 1 | C, H, W); bool, int and
        float are accepted. If omitted, a Bernoulli(``keep``) mask of shape (1, 1, H, W), shared by
        the batch and the channels, is drawn by the first `degrade` (from its generator) and kept,
        so `A` uses the same mask.
    keep : float, default 0.5
        Probability in (0, 1] that a pixel is observed, for a drawn mask.
    clean, observation, seed
        See `Task`. An ``observation`` needs its ``mask``.

    Raises
    ------
    ValueError
        If the mask does not match the image, or an observation is given without a mask.

    Examples
    --------
    >>> task = Inpaint(keep=0.5, clean=torch.rand(1, 1, 32, 32), seed=0)
    >>> y = task.observation
    >>> bool(torch.equal(task.A(y), y)), task.mask.shape
    (True, torch.Size([1, 1, 32, 32]))
    """

    name = "inpaint"
    default_lipschitz_lambda = 1.6
    default_iterations = 10_000
    backtracking = False

    def __init__(
        self,
        mask: Tensor | np.ndarray | None = None,
        keep: float = 0.5,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.keep = _check_keep(keep)
        self._mask = None if mask is None else _as_mask(mask)
        if observation is not None and self._mask is None:
            raise ValueError(
                "Inpaint(observation=...) needs the mask of the observed pixels; "
                "pass mask=... (1 = observed), e.g. from dipspec.data.paper_mask"
            )
        if clean is not None and self._mask is not None:
            reference = as_batched_image(clean, "clean")
            self._check_mask(self._mask, reference)
            self._mask = self._mask.to(device=reference.device, dtype=reference.dtype)
        super().__init__(clean=clean, observation=observation, seed=seed)

    @property
    def mask(self) -> Tensor | None:
        """The 0/1 mask (1 = observed pixel), or ``None`` until one is drawn."""
        return self._mask

    @staticmethod
    def _check_mask(mask: Tensor, image: Tensor) -> None:
        b, c, h, w = image.shape
        if (
            mask.shape[-2:] != image.shape[-2:]
            or mask.shape[0] not in (1, b)
            or mask.shape[1] not in (1, c)
        ):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}; "
                f"the mask must be (1 or {b}, 1, {h}, {w}): crop or resize both the same way"
            )

    def _after_observation(self, observation: Tensor) -> None:
        self._check_mask(self._mask, observation)
        self._mask = self._mask.to(device=observation.device, dtype=observation.dtype)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        if self._mask is None:
            h, w = x.shape[-2:]
            self._mask = bernoulli_mask(h, w, self.keep, generator, device=x.device, dtype=x.dtype)
        else:
            self._check_mask(self._mask, x)
        return x * self._mask.to(device=x.device, dtype=x.dtype)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        """Multiply by the mask: ``x ⊙ m``."""
        if self._mask is None:
            raise ValueError(
                "Inpaint has no mask yet; pass mask=... or clean=..., or call degrade() first"
            )
        return x * self._mask.to(device=x.device, dtype=x.dtype)

    def _parameters(self) -> str:
        if self._mask is None:
            return f"keep={self.keep:.3g}"
        return f"mask={tuple(self._mask.shape)}"


class SuperResolve(Task):
    """Super-resolution: ``y = D(x)`` with Ulyanov et al.'s Lanczos-2 downsampler ``D = A``.

    Parameters
    ----------
    factor : int, default 4
        Downsampling factor, an integer ≥ 2 (paper: 4 and 8); see `lanczos2_downsample`.
    clean, observation, seed
        See `Task`. A clean image whose height or width is not a multiple of ``factor`` is
        centre-cropped to one, with a warning. The degradation is noise-free:
        ``y = clip(A(x), 0, 1)`` (the clip only touches Lanczos overshoot at strong edges).

    Notes
    -----
    `output_size` is ``factor`` × the observation size: the network produces the
    high-resolution image and the loss compares its downsampled version with ``y`` (SPEC §8).

    Examples
    --------
    >>> task = SuperResolve(4, clean=torch.rand(1, 3, 32, 32))
    >>> task.observation.shape, task.output_size
    (torch.Size([1, 3, 8, 8]), (32, 32))
    """

    name = "super_resolve"
    default_lipschitz_lambda = 1.4
    default_iterations = 10_000
    backtracking = False

    def __init__(
        self,
        factor: int = 4,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.factor = _check_factor(factor)
        self._kernel = lanczos2_kernel(self.factor)
        self._weights: dict[tuple[torch.device, torch.dtype, int], Tensor] = {}
        if clean is not None:
            clean = self._crop(as_batched_image(clean, "clean"), stacklevel=3)
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _scale(self) -> int:
        return self.factor

    def _crop(self, x: Tensor, stacklevel: int) -> Tensor:
        h, w = x.shape[-2:]
        new_h, new_w = h - h % self.factor, w - w % self.factor
        if (new_h, new_w) == (h, w):
            return x
        if new_h == 0 or new_w == 0:
            raise ValueError(
                f"image {tuple(x.shape)} is smaller than factor={self.factor}; "
                "use a larger image or a smaller factor"
            )
        warnings.warn(
            f"image size {h}x{w} is not a multiple of factor={self.factor}; centre-cropped to "
            f"{new_h}x{new_w} (crop it yourself to silence this warning)",
            stacklevel=stacklevel,
        )
        top, left = (h - new_h) // 2, (w - new_w) // 2
        return x[..., top : top + new_h, left : left + new_w]

    def _weight(self, x: Tensor) -> Tensor:
        key = (x.device, x.dtype, x.shape[1])
        weight = self._weights.get(key)
        if weight is None:
            weight = self._kernel.to(device=x.device, dtype=x.dtype)
            weight = weight.expand(x.shape[1], 1, *weight.shape).contiguous()
            self._weights[key] = weight
        return weight

    def degrade(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Downsample ``x`` (centre-cropped to a multiple of ``factor``, with a warning)."""
        x = self._crop(_image(x, "x"), stacklevel=3)
        return self._degrade(x, generator)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        # Lanczos lobes overshoot near strong edges: clip so y is an image in [0, 1], like the
        # reference's 8-bit low-resolution image.
        return self.A(x).clamp(0, 1)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        """Lanczos-2 downsampling by ``factor`` (no checks: this runs every iteration)."""
        return _lanczos2_downsample(x, self._weight(x), self.factor)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        moved = super().to(device, dtype)
        moved._weights = {}
        return moved

    def _parameters(self) -> str:
        return f"factor={self.factor}"


class Enhance(Task):
    """Detail enhancement: fit ``x`` itself (``y = x``, ``A`` = identity) for 100 iterations.

    `finalize` returns ``clip(x + clip(x − f, 0, 1), 0, 1)`` with ``x`` the observation and ``f``
    the network output (SPEC §8; see `enhance_details`).

    Examples
    --------
    >>> x = torch.full((1, 1, 4, 4), 0.5)
    >>> task = Enhance(clean=x)
    >>> task.default_iterations, float(task.finalize(torch.full_like(x, 0.25))[0, 0, 0, 0])
    (100, 0.75)
    """

    name = "enhance"
    default_lipschitz_lambda = 1.0
    default_iterations = 100
    backtracking = False

    def __init__(
        self,
        *,
        clean: Tensor | None = None,
        observation: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(clean=clean, observation=observation, seed=seed)

    def _degrade(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return x.clone()

    def finalize(self, output: Tensor) -> Tensor:
        """The enhanced image ``clip(x + clip(x − output, 0, 1), 0, 1)``."""
        return enhance_details(self.observation, output)


TASKS: dict[str, type[Task]] = {
    "denoise": Denoise,
    "deblock": Deblock,
    "inpaint": Inpaint,
    "super_resolve": SuperResolve,
    "enhance": Enhance,
}

_ALIASES = {
    "denoising": "denoise",
    "deblocking": "deblock",
    "jpeg": "deblock",
    "inpainting": "inpaint",
    "super_resolution": "super_resolve",
    "superresolution": "super_resolve",
    "sr": "super_resolve",
    "enhancement": "enhance",
}


def make_task(name: str, **kwargs: Any) -> Task:
    """Build a task by name.

    Parameters
    ----------
    name : str
        One of ``TASKS`` (``'denoise'``, ``'deblock'``, ``'inpaint'``, ``'super_resolve'``,
        ``'enhance'``); the paper's folder names (``'denoising'``, …) are accepted too.
    **kwargs
        Passed to the task class (``clean=``, ``observation=``, ``seed=`` and its parameters).

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).

    Examples
    --------
    >>> make_task("super_resolve", factor=2).factor
    2
    """
    key = str(name).lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[key](**kwargs)
