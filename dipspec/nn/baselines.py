"""Chakrabarty & Maji's convolution-free baselines: DIP Linear-128/2048 and ReLUNet (SPEC §2).

Both go through :func:`dipspec.fit` unchanged (history, PSNR, callbacks): like every model of
:mod:`dipspec.nn` they map a fixed code ``z`` to a ``(1, C, H, W)`` image in [0, 1] and say
how large a code they need with ``input_shape(H, W)``.

- :class:`LinearDIP` replaces every convolution of DIP by a fully connected layer on flattened
  tensors: the first layer sees the whole flattened noise image, the last one outputs all
  ``H·W·C`` pixels. Its layer sizes depend on the image size, so it is built for one size.
  Fit it with ``input_kind="noise"`` (white noise of the image's shape).
- :class:`ReLUNet` is a coordinate MLP ``(x, y) ∈ [0, 1]² → pixel``; fit it with
  ``input_kind="meshgrid"``. Its ``pixel_batch = 2048`` makes :func:`dipspec.fit` train it on
  2048 random pixels per step, as Chakrabarty & Maji did.

References
----------
P. Chakrabarty and S. Maji, "The Spectral Bias of the Deep Image Prior", NeurIPS 2019
Bayesian Deep Learning workshop, arXiv:1912.08905.
"""

from __future__ import annotations

import ctypes
import sys

import torch
from torch import Tensor, nn

from .init import init_weights

__all__ = [
    "LINEAR_DIP_DEPTH",
    "LinearDIP",
    "ReLUNet",
    "linear_dip_parameter_count",
    "retain_freed_memory",
]

#: Layers on the main path of the 5-scale DIP encoder–decoder (:class:`~dipspec.nn.SkipNet`):
#: per scale a stride-2 conv, a 3×3 conv, the 3×3 merge conv and a 1×1 conv, then the output
#: 1×1 conv: 4 · 5 + 1 = 21.
LINEAR_DIP_DEPTH = 21


def _check_positive(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def retain_freed_memory() -> bool:
    """Make this process keep freed memory instead of returning it to the system (glibc).

    Every step of DIP Linear-2048 allocates its gradients afresh: 1.2 GB for a 128×128
    colour image. glibc serves blocks that large with ``mmap`` and unmaps them on release, so
    each step faults all those pages in again; on a 2-core CPU that is most of the step
    (about 1.4 s → 0.36 s per step at 128×192 with this call). Raising glibc's mmap and trim
    thresholds lets freed blocks be reused. The setting is process-wide and the resident
    memory then stays at its peak, so it is left to the caller: ``dipspec table`` calls it.

    Returns
    -------
    bool
        True if set; False where the C library is not glibc (macOS, Windows, musl).

    Examples
    --------
    >>> retain_freed_memory() in (True, False)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    largest = ctypes.c_int(2**31 - 1)
    return bool(mallopt(m_mmap_threshold, largest)) and bool(mallopt(m_trim_threshold, largest))


def linear_dip_parameter_count(width: int, height: int, image_width: int, channels: int = 3,
                               depth: int = LINEAR_DIP_DEPTH, in_channels: int | None = None
                               ) -> int:
    """Number of trainable parameters of ``LinearDIP(width, (height, image_width), ...)``.

    ``n_in·w + w`` (first layer) + ``(depth − 2)(w² + w)`` (hidden) + ``w·n_out + n_out``
    (last), with ``n_in = in_channels·H·W`` and ``n_out = channels·H·W``.

    Examples
    --------
    >>> linear_dip_parameter_count(128, 128, 128)
    12945920
    """
    n_in = (channels if in_channels is None else in_channels) * height * image_width
    n_out = channels * height * image_width
    return n_in * width + width + (depth - 2) * (width * width + width) + width * n_out + n_out


class LinearDIP(nn.Module):
    """DIP with every convolution replaced by a fully connected layer ("DIP Linear-``width``").

    Parameters
    ----------
    width : int
        Units of every hidden layer (Chakrabarty & Maji: 128 and 2048).
    image_size : int or (int, int)
        ``(H, W)`` of the images it produces (the layer sizes depend on it).
    out_channels : int
        C, 1 (grey) or 3 (colour).
    in_channels : int, optional
        Channels of the noise code; default ``out_channels`` (noise of the image's shape).
    depth : int
        Number of linear layers (default 21, the main-path depth of the 5-scale DIP
        encoder–decoder, :data:`LINEAR_DIP_DEPTH`).
    seed : int or torch.Generator, optional
        Seed of the Kaiming-uniform initialisation (:func:`~dipspec.nn.init_weights`).

    Shape
    -----
    ``(1, in_channels, H, W)`` → ``(1, out_channels, H, W)``.

    Notes
    -----
    No batch norm and no upsampling; LeakyReLU(0.2) between layers and a sigmoid on the
    output (SPEC §2). The first and last layers hold ``C·H·W·width`` weights each: at 128×128
    colour, Linear-2048 has 2.8·10⁸ parameters (1.1 GB in float32, four times that with Adam's
    state and the gradient; about 0.3 s per step on 2 CPU threads after
    :func:`retain_freed_memory`, 1–2 s without it). Train it with Adam at
    1e-4: at 1e-3 its sigmoid saturates within ten steps and stays there (House ÷4: PSNR
    13.5 → 7.3 dB); Linear-128 trains at 1e-3.

    Examples
    --------
    >>> net = LinearDIP(16, (6, 5), out_channels=1, depth=3, seed=0)
    >>> net.input_shape(6, 5)
    (1, 6, 5)
    >>> net(torch.rand(1, 1, 6, 5)).shape
    torch.Size([1, 1, 6, 5])
    >>> sum(p.numel() for p in net.parameters()) == linear_dip_parameter_count(16, 6, 5, 1, 3)
    True
    """

    def __init__(self, width: int = 128, image_size: int | tuple[int, int] = 128,
                 out_channels: int = 3, in_channels: int | None = None,
                 depth: int = LINEAR_DIP_DEPTH,
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        height, image_width = ((image_size, image_size) if isinstance(image_size, int)
                               else tuple(image_size))
        self.width = _check_positive(width, "width")
        self.depth = _check_positive(depth, "depth", 2)
        self.image_size = (_check_positive(height, "image_size"),
                           _check_positive(image_width, "image_size"))
        self.out_channels = out_channels
        self.in_channels = out_channels if in_channels is None else in_channels
        self.lipschitz_lambda = None
        sizes = ([self.in_channels * height * image_width] + [width] * (depth - 1)
                 + [out_channels * height * image_width])
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            layers.append(nn.LeakyReLU(0.2) if i < depth - 1 else nn.Sigmoid())
        self.body = nn.Sequential(*layers)
        init_weights(self, seed)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(channels, H, W)`` of the noise code: the image's own shape."""
        if (height, width) != self.image_size:
            raise ValueError(f"this LinearDIP was built for {self.image_size[0]}x"
                             f"{self.image_size[1]} images, got {height}x{width}; build it "
                             f"with image_size=({height}, {width})")
        return self.in_channels, height, width

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[0]
        height, width = self.image_size
        return self.body(z.reshape(batch, -1)).reshape(batch, self.out_channels, height, width)

    def extra_repr(self) -> str:
        return f"width={self.width}, depth={self.depth}, image_size={self.image_size}"


class _SparsePixelGradient(torch.autograd.Function):
    """A per-pixel MLP whose backward pass only revisits the pixels that received a gradient.

    Where :func:`dipspec.fit` evaluates the whole image with a graph every step (a task whose
    operator is not the identity, e.g. an inpainting mask, or with ``ema``), the loss of a
    ``pixel_batch`` model still sees only a random minibatch of pixels, so all other rows of
    the incoming gradient are zero. (Under the identity operator ``fit`` feeds the network the
    minibatch's coordinates alone and never reaches this path.) The forward pass runs without
    building a graph; the backward pass recomputes the network on the rows with a non-zero
    gradient and back-propagates those. Pixels are independent, so the parameter gradients
    are exactly those of the plain network (up to the order of floating-point sums), at about
    a third of its cost for 2048 of 16 384 pixels. Finding the rows is one host sync per step
    in the backward pass.
    """

    @staticmethod
    def forward(ctx, body: nn.Module, pixels: Tensor, *params: Tensor) -> Tensor:
        ctx.body = body
        ctx.save_for_backward(pixels, *params)
        with torch.no_grad():
            return body(pixels)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        pixels, *params = ctx.saved_tensors
        rows = grad_output.ne(0).any(dim=1).nonzero().squeeze(1)
        with torch.enable_grad():
            values = ctx.body(pixels[rows])
            grads = torch.autograd.grad(values, params, grad_output[rows], allow_unused=True)
        return (None, None, *grads)


class ReLUNet(nn.Module):
    """Coordinate MLP ``(x, y) ∈ [0, 1]² → pixel`` (Chakrabarty & Maji's ReLUNet, SPEC §2).

    Parameters
    ----------
    depth : int
        Number of linear layers (10: 2→256, eight 256→256, 256→C).
    width : int
        Units of every hidden layer (256).
    out_channels : int
    pixel_batch : int
        Random pixels per training step (2048); read by :func:`dipspec.fit`.
    seed : int or torch.Generator, optional

    Shape
    -----
    ``(1, 2, H, W)`` coordinate grid (``make_input("meshgrid", 2, (H, W))``: channel 0 is x,
    channel 1 is y) → ``(1, out_channels, H, W)``.

    Notes
    -----
    ReLU between layers, sigmoid output; Chakrabarty & Maji train it with Adam at 1e-3 (the
    :func:`dipspec.fit` default). Every pixel is evaluated independently, so the network has
    no convolution at all (the kernel-size-1 special case of DIP).

    Examples
    --------
    >>> net = ReLUNet(seed=0)
    >>> net.input_shape(8, 6), net.pixel_batch
    ((2, 8, 6), 2048)
    >>> net(torch.rand(1, 2, 8, 6)).shape
    torch.Size([1, 3, 8, 6])
    """

    def __init__(self, depth: int = 10, width: int = 256, out_channels: int = 3,
                 pixel_batch: int = 2048, seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        self.depth = _check_positive(depth, "depth", 2)
        self.width = _check_positive(width, "width")
        self.pixel_batch = _check_positive(pixel_batch, "pixel_batch")
        self.out_channels = out_channels
        self.lipschitz_lambda = None
        sizes = [2] + [width] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            layers.append(nn.ReLU() if i < depth - 1 else nn.Sigmoid())
        self.body = nn.Sequential(*layers)
        init_weights(self, seed)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(2, H, W)``: the x/y coordinate grid."""
        return 2, height, width

    def forward(self, coords: Tensor) -> Tensor:
        if coords.ndim != 4 or coords.shape[1] != 2:
            raise ValueError(f"ReLUNet expects a (B, 2, H, W) coordinate grid, got "
                             f"{tuple(coords.shape)}; fit it with input_kind='meshgrid'")
        batch, _, height, width = coords.shape
        pixels = coords.permute(0, 2, 3, 1).reshape(-1, 2)
        if torch.is_grad_enabled() and self.training and pixels.shape[0] > self.pixel_batch:
            params = tuple(p for p in self.parameters() if p.requires_grad)
            values = _SparsePixelGradient.apply(self.body, pixels, *params)
        else:
            values = self.body(pixels)
        values = values.reshape(batch, height, width, self.out_channels)
        return values.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, pixel_batch={self.pixel_batch}"
