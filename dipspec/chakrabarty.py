"""Experiments of Chakrabarty & Maji, "The Spectral Bias of the Deep Image Prior" (SPEC §9).

Helpers behind notebooks 07–11 and ``dipspec table architectures``:

- trajectories: :func:`trajectory_pair` fits one observation twice (different initialisation
  and code) and measures the squared distance between the two output trajectories;
  :func:`meetings` finds where they meet.
- low-frequency noise: :func:`low_frequency_noise` and :func:`fitted_fractions` (how much of
  the noise and of the image's fine texture an output has reproduced).
- the prior at initialisation: :class:`RandomConvNet` and :func:`init_spectrum` (power
  spectrum of untrained outputs averaged over initialisations), :func:`spectral_slope`.
- upsampling stride: :class:`StrideDecoder` (same depth, any total stride),
  :func:`spectrum_error` and :func:`high_frequency_energy`.
- the architecture table: :func:`build_architecture`, :func:`architecture_table`,
  :func:`summarise_table`, :func:`write_table`.

The DIP of these experiments is the encoder–decoder (:class:`~dipspec.models.SkipNet`) with
Chakrabarty & Maji's changes: zero padding, Adam at 1e-3, a white-noise code with the image's
shape. dipspec's ``noise`` code is uniform (``U(0, 1) × 0.1``) rather than Gaussian; batch norm
after the first convolution makes the difference a shift and a scale.

References
----------
P. Chakrabarty and S. Maji, "The Spectral Bias of the Deep Image Prior", NeurIPS 2019
Bayesian Deep Learning workshop, arXiv:1912.08905.
Z. Cheng, M. Gadelha, S. Maji and D. Sheldon, "A Bayesian Perspective on the Deep Image
Prior", CVPR 2019.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from . import data, metrics, spectral
from ._fit import FitResult, fit
from .baselines import LinearDIP, ReLUNet
from .models import SkipNet
from .presets import resolve_device
from .tasks import Denoise, Task

__all__ = [
    "ARCHITECTURES",
    "LEARNING_RATES",
    "RandomConvNet",
    "StrideDecoder",
    "architecture_table",
    "beats",
    "best_is",
    "build_architecture",
    "check_updatable",
    "crop",
    "divergence_after_first_meeting",
    "divergences",
    "figure_init_spectra",
    "figure_noise_fits",
    "figure_stride",
    "figure_table",
    "figure_trajectories",
    "first_reach",
    "fitted_fraction_curves",
    "fitted_fractions",
    "fitting_order",
    "gain_over_noisy",
    "gaussian_blur",
    "high_frequency_energy",
    "image_label",
    "increases",
    "init_examples",
    "init_spectra",
    "init_spectrum",
    "larger_high_error",
    "low_frequency_noise",
    "machine",
    "meeting_images",
    "nearly_white",
    "pattern_fitted",
    "meetings",
    "noise_fits",
    "random_outputs",
    "read_table",
    "results_path",
    "select",
    "setup",
    "slope_table",
    "slopes",
    "smoother",
    "smoothness_table",
    "spectral_slope",
    "spectrum_error",
    "steepens_with_depth",
    "steeper",
    "stride_fits",
    "summarise_table",
    "table_images",
    "table_provenance",
    "trajectory_distance",
    "trajectory_pair",
    "trajectory_sweep",
    "update_table",
    "white_noise",
    "write_table",
]

#: The rows of the architecture table, in the poster's order.
ARCHITECTURES = ("DIP", "DIP Linear-128", "DIP Linear-2048", "ReLUNet")

#: Adam learning rate of each architecture: 1e-3 (Chakrabarty & Maji) except DIP Linear-2048,
#: which at 1e-3 drives its sigmoid into saturation within ten steps and stays there (House
#: ÷4: PSNR 13.5 → 7.3 dB, no recovery in 150 steps); at 1e-4 it trains (20.4 dB by step 37).
LEARNING_RATES = {"DIP": 1e-3, "DIP Linear-128": 1e-3, "DIP Linear-2048": 1e-4, "ReLUNet": 1e-3}


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------


def build_architecture(name: str, image_size: tuple[int, int], channels: int = 3, seed: int = 0,
                       dip_channels: int = 128, dip_scales: int = 5
                       ) -> tuple[nn.Module, str]:
    """``(model, input_kind)`` of one of :data:`ARCHITECTURES` for an ``image_size`` image.

    ``"DIP"`` is :class:`~dipspec.models.SkipNet` with zero padding, ``dip_channels`` wide,
    ``dip_scales`` scales, fed white noise with the image's channels (``input_kind="noise"``);
    ``"DIP Linear-128"``/``"DIP Linear-2048"`` are :class:`~dipspec.baselines.LinearDIP` fed
    white noise of the image's shape; ``"ReLUNet"`` is fed the coordinate grid.

    Examples
    --------
    >>> model, kind = build_architecture("ReLUNet", (8, 8), channels=1)
    >>> type(model).__name__, kind
    ('ReLUNet', 'meshgrid')
    """
    if name == "DIP":
        return SkipNet(in_channels=channels, out_channels=channels, channels=dip_channels,
                       scales=dip_scales, padding_mode="zeros", seed=seed), "noise"
    if name.startswith("DIP Linear-"):
        width = int(name.removeprefix("DIP Linear-"))
        return LinearDIP(width, image_size, out_channels=channels, seed=seed), "noise"
    if name == "ReLUNet":
        return ReLUNet(out_channels=channels, seed=seed), "meshgrid"
    raise ValueError(f"unknown architecture {name!r}; choose one of {ARCHITECTURES}")


def _dip_fit(task: Task, seed: int, iterations: int, channels: int, scales: int,
             keep_every: int = 0, device: str | torch.device = "cpu", lr: float = 1e-3,
             metrics_every: int = 0) -> FitResult:
    """One plain (uncontrolled, no backtracking) DIP fit of Chakrabarty & Maji."""
    height, width = task.output_size
    model, kind = build_architecture("DIP", (height, width), task.channels, seed=seed,
                                     dip_channels=channels, dip_scales=scales)
    keep = range(0, iterations, keep_every) if keep_every else ()
    return fit(task, model=model, iterations=iterations, lr=lr, seed=seed, device=device,
               input_kind=kind, backtracking=False, metrics_every=metrics_every,
               log_every=keep_every or 1, keep_outputs=keep, progress=False)


# ----------------------------------------------------------------------------------------------
# 07: trajectories
# ----------------------------------------------------------------------------------------------


def trajectory_distance(first: Mapping[int, Tensor], second: Mapping[int, Tensor]) -> pd.Series:
    """Mean squared distance between two output trajectories, by iteration.

    Parameters
    ----------
    first, second : mapping iteration -> Tensor (1, C, H, W)
        Outputs at the same iterations (``FitResult.snapshots``).

    Returns
    -------
    pandas.Series
        ``mean((first[t] − second[t])²)`` over pixels and channels, indexed by iteration.

    Examples
    --------
    >>> a = {0: torch.zeros(1, 1, 2, 2), 5: torch.ones(1, 1, 2, 2)}
    >>> trajectory_distance(a, {0: torch.ones(1, 1, 2, 2), 5: torch.ones(1, 1, 2, 2)}).tolist()
    [1.0, 0.0]
    """
    iterations = sorted(set(first) & set(second))
    values = [float((first[t] - second[t]).square().mean()) for t in iterations]
    return pd.Series(values, index=pd.Index(iterations, name="iteration"), name="distance")


def trajectory_pair(task: Task, seeds: tuple[int, int] = (0, 1), iterations: int = 1500,
                    every: int = 10, channels: int = 32, scales: int = 4,
                    device: str | torch.device = "cpu") -> tuple[pd.Series, list[FitResult]]:
    """Fit ``task`` twice (seeds differ in initialisation and code); their trajectory distance.

    Returns
    -------
    (pandas.Series, [FitResult, FitResult])
        :func:`trajectory_distance` every ``every`` iterations, and the two fits (their
        ``snapshots`` hold the outputs).
    """
    fits = [_dip_fit(task, seed, iterations, channels, scales, keep_every=every, device=device)
            for seed in seeds]
    return trajectory_distance(fits[0].snapshots, fits[1].snapshots), fits


def _smooth_log(distance: pd.Series, smooth: int) -> np.ndarray:
    """``log(distance)`` through a centred rolling median (Adam's one-step spikes drop out)."""
    values = np.log(np.maximum(distance.to_numpy(dtype=float), 1e-12))
    if smooth > 1:
        values = pd.Series(values).rolling(smooth, center=True, min_periods=1).median().to_numpy()
    return values


def meetings(distance: pd.Series, rise: float = 1.5, smooth: int = 3) -> list[int]:
    """Iterations where two trajectories meet: the minima of their distance between rises.

    A minimum counts when the (smoothed) distance later rises to at least ``rise`` times it
    (a meeting the trajectories leave again), or when it is the end of the run and lies at
    least ``rise`` times below the highest distance since the previous meeting (they meet
    for good). The first point of the run is never a meeting.

    Parameters
    ----------
    distance : pandas.Series
        :func:`trajectory_distance`, indexed by iteration.
    rise : float
        Factor that separates two meetings (hysteresis against wiggles).
    smooth : int
        Window of the centred rolling median of ``log(distance)``.

    Returns
    -------
    list of int
        Iterations of the meetings, in order.

    Examples
    --------
    >>> d = pd.Series([1.0, 0.2, 0.1, 0.5, 0.9, 0.3, 0.01], index=range(0, 70, 10))
    >>> meetings(d, smooth=1)
    [20, 60]
    """
    values = _smooth_log(distance, smooth)
    iterations = distance.index.to_numpy()
    threshold = math.log(rise)
    found: list[int] = []
    low_at, low = None, math.inf
    high_since = values[0]
    for i, value in enumerate(values):
        if i == 0:
            continue
        if value < low:
            low_at, low = i, value
        if low_at is not None and value - low >= threshold:
            if high_since - low >= threshold:
                found.append(int(iterations[low_at]))
            high_since, low_at, low = value, None, math.inf
        high_since = max(high_since, value)
    if low_at is not None and high_since - low >= threshold and low_at == len(values) - 1:
        found.append(int(iterations[low_at]))
    return found


def pattern_fitted(output: Tensor, target: Tensor) -> float:
    """Least-squares coefficient of the target's variation ``t − mean(t)`` in ``output − mean(t)``.

    0: the output holds only the target's mean (or something unrelated); 1: all of it.

    Examples
    --------
    >>> t = torch.rand(1, 1, 8, 8)
    >>> round(pattern_fitted(t, t), 6), round(pattern_fitted(torch.full_like(t, t.mean()), t), 6)
    (1.0, 0.0)
    """
    variation = target - target.mean()
    return float(((output - target.mean()) * variation).sum() / variation.square().sum())


def meeting_images(fits: Sequence[FitResult], distance: pd.Series, found: Sequence[int],
                   target: Tensor | None = None) -> dict[str, Tensor]:
    """Both runs' outputs at the first meeting, where they part most after it, and at the end.

    Titles carry the iteration; ``target`` (the observation) comes first when given.
    """
    images = {} if target is None else {"observation": target}
    if not found:
        return images
    after = distance[distance.index > found[0]]
    apart = int(after.idxmax()) if len(after) else found[0]
    last = int(distance.index[-1])
    for label, it in (("meeting 1", found[0]), ("apart", apart), ("end", last)):
        for run, result in zip("AB", fits):
            images[f"run {run}, {label} (it. {it})"] = result.snapshots[it]
    return images


def trajectory_sweep(fractions: Sequence[float], size: int = 48, iterations: int = 1500,
                     every: int = 10, channels: int = 32, scales: int = 4,
                     seeds: tuple[int, int] = (0, 1), line_period: int = 2,
                     device: str | torch.device = "cpu") -> pd.DataFrame:
    """Trajectory distances on :func:`~dipspec.synthetic.stripes_and_lines` images.

    For each ``pattern_fraction``, the clean synthetic image is fitted twice
    (:func:`trajectory_pair`).

    Returns
    -------
    pandas.DataFrame
        Index: iteration; one column of distances per fraction.
    """
    from .synthetic import stripes_and_lines

    columns = {}
    for fraction in fractions:
        image = stripes_and_lines(size, pattern_fraction=fraction, line_period=line_period)
        task = Denoise(observation=image)
        columns[float(fraction)], _ = trajectory_pair(task, seeds, iterations, every, channels,
                                                      scales, device)
    return pd.DataFrame(columns)


def divergence_after_first_meeting(distance: pd.Series, smooth: int = 5) -> float:
    """How far two trajectories part again after meeting: the largest rise of their distance.

    ``max over s < t of d(t) / d(s)`` on the median-smoothed distance: 1.0 when the distance
    only shrinks (the trajectories never part again), 2.0 when it doubles after a meeting.

    Examples
    --------
    >>> d = pd.Series([1.0, 0.2, 0.1, 0.3, 0.4, 0.01], index=range(0, 60, 10))
    >>> round(divergence_after_first_meeting(d, smooth=1), 6)
    4.0
    >>> divergence_after_first_meeting(pd.Series([1.0, 0.5, 0.2]), smooth=1)
    1.0
    """
    values = _smooth_log(distance, smooth)
    lowest_so_far = np.minimum.accumulate(values)
    return float(np.exp(np.max(values - lowest_so_far)))


def divergences(sweep: pd.DataFrame, smooth: int = 5) -> pd.Series:
    """:func:`divergence_after_first_meeting` of every column of :func:`trajectory_sweep`."""
    values = {column: round(divergence_after_first_meeting(sweep[column], smooth), 3)
              for column in sweep.columns}
    series = pd.Series(values, name="divergence after the first meeting")
    series.index.name = "pattern fraction"
    return series


def increases(values: pd.Series, margin: float = 0.0, tolerance: float = 0.0) -> bool:
    """Whether ``values`` (by index) never fall by more than ``tolerance`` and end more than
    ``margin`` above their start.

    Examples
    --------
    >>> increases(pd.Series([1.0, 1.0, 3.0])), increases(pd.Series([1.0, 1.2, 0.9]))
    (True, False)
    """
    array = values.sort_index().to_numpy(dtype=float)
    return bool(np.all(np.isfinite(array)) and np.all(np.diff(array) >= -tolerance)
                and array[-1] > array[0] + margin)


# ----------------------------------------------------------------------------------------------
# 08: low-frequency noise
# ----------------------------------------------------------------------------------------------


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of ``(B, C, H, W)`` with std ``sigma`` pixels (circular, via the FFT).

    Examples
    --------
    >>> x = torch.rand(1, 1, 16, 16)
    >>> bool(torch.allclose(gaussian_blur(x, 2.0).mean(), x.mean(), atol=1e-6))
    True
    """
    height, width = image.shape[-2:]
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    transfer = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    blurred = torch.fft.ifft2(torch.fft.fft2(image.double()) * transfer).real
    return blurred.to(image.dtype)


def low_frequency_noise(shape: Sequence[int], std: float = 25 / 255, sigma: float = 4.0,
                        seed: int = 0) -> Tensor:
    """White Gaussian noise low-passed by a Gaussian of ``sigma`` pixels, rescaled to ``std``.

    Examples
    --------
    >>> n = low_frequency_noise((1, 1, 32, 32), std=0.1, sigma=3.0)
    >>> n.shape, round(float(n.std()), 3)
    (torch.Size([1, 1, 32, 32]), 0.1)
    """
    generator = torch.Generator().manual_seed(seed)
    white = torch.randn(tuple(shape), generator=generator, dtype=torch.float64)
    smooth = gaussian_blur(white, sigma)
    smooth = smooth - smooth.mean()
    return (smooth * (std / smooth.std())).float()


def white_noise(shape: Sequence[int], std: float = 25 / 255, seed: int = 0) -> Tensor:
    """White Gaussian noise of std ``std`` (the CPU generator seeded with ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator) * std


def fitted_fractions(output: Tensor, clean: Tensor, noise: Tensor,
                     texture_sigma: float = 1.5) -> tuple[float, float]:
    """How much of the noise and of the fine texture an output reproduces (each 0 … 1).

    ``noise``: the least-squares coefficient of ``noise`` in ``output − clean``.
    ``texture``: the coefficient of the clean image's fine texture ``t = clean − blur(clean)``
    in ``output − blur(clean)`` (``blur``: Gaussian of ``texture_sigma`` pixels). An output
    equal to ``clean + noise`` scores (1, 1); the blurred clean image scores (0, 0).

    Examples
    --------
    >>> x = torch.rand(1, 1, 32, 32); n = 0.1 * torch.randn(1, 1, 32, 32)
    >>> [round(v, 1) for v in fitted_fractions(x + n, x, n)]
    [1.0, 1.0]
    """
    smooth = gaussian_blur(clean, texture_sigma)
    texture = clean - smooth
    noise_part = float(((output - clean) * noise).sum() / noise.square().sum())
    texture_part = float(((output - smooth) * texture).sum() / texture.square().sum())
    return noise_part, texture_part


def fitted_fraction_curves(result: FitResult, clean: Tensor, noise: Tensor,
                           texture_sigma: float = 1.5) -> pd.DataFrame:
    """:func:`fitted_fractions` of every kept output of ``result`` (columns noise, texture)."""
    rows = {it: fitted_fractions(out, clean, noise, texture_sigma)
            for it, out in sorted(result.snapshots.items())}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["noise", "texture"])
    frame.index.name = "iteration"
    return frame


def first_reach(curve: pd.Series, value: float) -> float:
    """First index at which ``curve >= value`` (``inf`` if never)."""
    hit = curve[curve >= value]
    return float(hit.index[0]) if len(hit) else math.inf


def crop(image: Tensor, top: int, left: int, size: int) -> Tensor:
    """The ``size × size`` crop of ``image`` (B, C, H, W) whose top-left pixel is (top, left).

    Examples
    --------
    >>> crop(torch.rand(1, 1, 10, 12), 2, 3, 4).shape
    torch.Size([1, 1, 4, 4])
    """
    height, width = image.shape[-2:]
    if top < 0 or left < 0 or top + size > height or left + size > width:
        raise ValueError(f"crop of {size}x{size} at ({top}, {left}) leaves the "
                         f"{height}x{width} image; pick a smaller size or another corner")
    return image[..., top:top + size, left:left + size].contiguous()


def fitting_order(fits: Mapping[str, FitResult],
                  curves: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """When each fit reproduces half of its noise and half of the fine texture.

    Returns
    -------
    pandas.DataFrame
        One row per noise: ``noise_half`` and ``texture_half`` (first kept iteration where
        the fitted fraction reaches 0.5; ``inf`` if never), ``peak_iteration`` and
        ``peak_psnr`` (PSNR against the clean image), and ``noise_at_peak`` /
        ``texture_at_peak`` (fractions at the kept iteration nearest the peak).
    """
    rows = {}
    for label, result in fits.items():
        curve = curves[label]
        peak_iteration, peak_psnr = result.peak("psnr")
        nearest = curve.index[np.abs(curve.index.to_numpy() - peak_iteration).argmin()]
        rows[label] = dict(noise_half=first_reach(curve["noise"], 0.5),
                           texture_half=first_reach(curve["texture"], 0.5),
                           peak_iteration=peak_iteration, peak_psnr=round(peak_psnr, 2),
                           noise_at_peak=round(float(curve.loc[nearest, "noise"]), 3),
                           texture_at_peak=round(float(curve.loc[nearest, "texture"]), 3))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "noise"
    return frame


def noise_fits(clean: Tensor, noises: Mapping[str, Tensor], iterations: int = 1500,
               every: int = 25, channels: int = 32, scales: int = 4, seed: int = 0,
               metrics_every: int = 25, texture_sigma: float = 1.5,
               device: str | torch.device = "cpu"
               ) -> tuple[dict[str, FitResult], dict[str, pd.DataFrame]]:
    """Fit DIP to ``clean + noise`` for each labelled noise; fits and fitted-fraction curves."""
    fits, curves = {}, {}
    for label, noise in noises.items():
        observation = (clean + noise).clamp(0, 1)
        task = Denoise(clean=clean, observation=observation)
        fits[label] = _dip_fit(task, seed, iterations, channels, scales, keep_every=every,
                               device=device, metrics_every=metrics_every)
        curves[label] = fitted_fraction_curves(fits[label], clean, observation - clean,
                                               texture_sigma)
    return fits, curves


# ----------------------------------------------------------------------------------------------
# 09: the prior at initialisation
# ----------------------------------------------------------------------------------------------


class RandomConvNet(nn.Module):
    """A stack of ``depth`` random convolutions with ReLU: DIP's prior at initialisation.

    Each layer is a ``kernel_size`` convolution (random normal weights of std
    ``sqrt(2 / fan_in)`` and normal biases of std ``bias_std``) followed by a ReLU; a last
    1×1 convolution maps to one channel, with no output nonlinearity. These are the
    conditions of the Gaussian-process limit (Cheng et al. 2019): random normal filters, many
    channels. Circular padding (the default) keeps the process stationary; with zero padding
    the borders add low-frequency structure that grows with the receptive field.

    Parameters
    ----------
    dims : {1, 2}
        1-D signals or 2-D images.
    depth : int
    channels : int
    kernel_size : int
    bias_std : float
    padding_mode : {"circular", "zeros", "reflect"}
    seed : int

    Examples
    --------
    >>> RandomConvNet(1, depth=3, channels=4)(torch.randn(1, 4, 32)).shape
    torch.Size([1, 1, 32])
    """

    def __init__(self, dims: int = 2, depth: int = 4, channels: int = 32, kernel_size: int = 3,
                 bias_std: float = 0.1, padding_mode: str = "circular", seed: int = 0) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        generator = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layer = conv(channels, channels, kernel_size, padding=kernel_size // 2,
                         padding_mode=padding_mode)
            layers += [layer, nn.ReLU()]
        layers.append(conv(channels, 1, 1))
        self.body = nn.Sequential(*layers)
        self.dims, self.depth, self.channels = dims, depth, channels
        with torch.no_grad():
            for layer in self.body:
                if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                    fan_in = layer.weight[0].numel()
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                                       * math.sqrt(2.0 / fan_in))
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator)
                                     * bias_std)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)


def _power_1d(signal: Tensor) -> Tensor:
    """Power spectrum of ``(B, 1, N)`` signals, frequencies 0 … N/2."""
    return torch.fft.rfft(signal[:, 0].double()).abs().square()


def _power_2d(image: Tensor) -> Tensor:
    """Radially averaged power spectrum of ``(B, 1, H, W)`` images (no range check)."""
    batch, _, height, width = image.shape
    power = torch.fft.fft2(image.double()).abs().square()
    weights = spectral._radial_weights(height, width, image.device, torch.float64)
    return power.reshape(batch, -1) @ weights


def init_spectrum(depth: int, input_std: float = 1.0, dims: int = 2, size: int = 64,
                  channels: int = 32, samples: int = 32, bias_std: float = 0.1,
                  seed: int = 0, padding_mode: str = "circular") -> pd.Series:
    """Power spectrum of the untrained output, averaged over ``samples`` initialisations.

    Each sample draws a new :class:`RandomConvNet` (``padding_mode``: ``"circular"`` for a
    stationary process, ``"zeros"`` as DIP pads) and a new white Gaussian code of std
    ``input_std`` (``channels`` channels). The spectrum of each output (1-D: ``|rfft|²``;
    2-D: radially averaged ``|fft2|²``) has its DC term dropped and is normalised to sum 1
    before averaging, so only its shape counts.

    Returns
    -------
    pandas.Series
        Mean normalised power by frequency (cycles per signal), from frequency 1.
    """
    spectra = []
    with torch.no_grad():
        for k in range(samples):
            net = RandomConvNet(dims, depth, channels, bias_std=bias_std,
                                padding_mode=padding_mode, seed=seed * 100_003 + k)
            generator = torch.Generator().manual_seed(seed * 100_003 + k + 50_000)
            shape = (1, channels) + (size,) * dims
            z = torch.randn(shape, generator=generator) * input_std
            out = net(z)
            power = (_power_1d(out) if dims == 1 else _power_2d(out))[0, 1:]
            spectra.append(power / power.sum())
    mean = torch.stack(spectra).mean(0).numpy()
    return pd.Series(mean, index=pd.Index(np.arange(1, len(mean) + 1), name="frequency"),
                     name=f"depth {depth}, input std {input_std}")


def spectral_slope(spectrum: pd.Series, low: int = 2, high: int | None = None) -> float:
    """Least-squares slope of ``log power`` against ``log frequency`` over ``[low, high]``.

    More negative = steeper = smoother outputs. Default range: 2 … half the highest frequency.

    Examples
    --------
    >>> f = pd.Series([1.0 / k**2 for k in range(1, 33)], index=range(1, 33))
    >>> round(spectral_slope(f), 3)
    -2.0
    """
    high = high or int(spectrum.index.max()) // 2
    part = spectrum[(spectrum.index >= low) & (spectrum.index <= high)]
    slope = np.polyfit(np.log(part.index.to_numpy(dtype=float)),
                       np.log(part.to_numpy(dtype=float)), 1)[0]
    return float(slope)


def init_spectra(depths: Sequence[int], input_stds: Sequence[float], dims: int = 2,
                 size: int = 64, channels: int = 32, samples: int = 32, bias_std: float = 0.1,
                 seed: int = 0, padding_mode: str = "circular") -> pd.DataFrame:
    """:func:`init_spectrum` for every (depth, input std); columns are a (depth, std) index."""
    columns = {(d, s): init_spectrum(d, s, dims, size, channels, samples, bias_std, seed,
                                     padding_mode)
               for d in depths for s in input_stds}
    frame = pd.DataFrame(columns)
    frame.columns.names = ["depth", "input_std"]
    return frame


def slopes(spectra: pd.DataFrame) -> pd.Series:
    """:func:`spectral_slope` of every column of :func:`init_spectra`."""
    return spectra.apply(spectral_slope)


def slope_table(spectra: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Slopes of several :func:`init_spectra` frames: rows (depth, input std), one column each."""
    table = pd.DataFrame({label: slopes(frame) for label, frame in spectra.items()})
    return table.round(3)


def select(spectra: pd.DataFrame, depth: int | None = None,
           input_std: float | None = None) -> pd.DataFrame:
    """The columns of :func:`init_spectra` with this depth and/or input std."""
    keep = [c for c in spectra.columns
            if (depth is None or c[0] == depth) and (input_std is None or c[1] == input_std)]
    return spectra[keep]


def steeper(table: pd.DataFrame, column: str, first: tuple, second: tuple,
            other: str | None = None) -> bool:
    """Whether the slope at ``first`` (depth, std) in ``column`` is more negative than that at
    ``second`` in ``other`` (default: the same column)."""
    return bool(table.loc[first, column] < table.loc[second, other or column])


def nearly_white(table: pd.DataFrame, columns: Sequence[str], bound: float = 0.3) -> bool:
    """Whether every slope in ``columns`` lies within ``±bound`` (a nearly flat spectrum)."""
    values = table[list(columns)].to_numpy(dtype=float)
    return bool(np.all(np.abs(values[np.isfinite(values)]) < bound))


def steepens_with_depth(table: pd.DataFrame, input_std: float = 1.0) -> bool:
    """Whether, at ``input_std``, every column's slope falls strictly as the depth grows."""
    part = table.xs(input_std, level=1).sort_index()
    return bool((np.diff(part.to_numpy(), axis=0) < 0).all())


def init_examples(depths: Sequence[int], input_std: float = 1.0, size: int = 64,
                  channels: int = 32, bias_std: float = 0.1, seed: int = 0
                  ) -> dict[str, Tensor]:
    """One untrained 2-D output per depth, rescaled to [0, 1], titled for display."""
    return {f"depth {d}, σ_in {input_std:g}": random_outputs(d, input_std, 2, size, channels,
                                                             bias_std, seed) for d in depths}


def random_outputs(depth: int, input_std: float = 1.0, dims: int = 2, size: int = 64,
                   channels: int = 32, bias_std: float = 0.1, seed: int = 0) -> Tensor:
    """One untrained output, rescaled to [0, 1] for display (1-D: shape (N,))."""
    with torch.no_grad():
        net = RandomConvNet(dims, depth, channels, bias_std=bias_std, seed=seed * 100_003)
        generator = torch.Generator().manual_seed(seed * 100_003 + 50_000)
        z = torch.randn((1, channels) + (size,) * dims, generator=generator) * input_std
        out = net(z)
    out = (out - out.min()) / (out.max() - out.min()).clamp_min(1e-12)
    return out[0, 0] if dims == 1 else out


# ----------------------------------------------------------------------------------------------
# 10: upsampling stride
# ----------------------------------------------------------------------------------------------


class StrideDecoder(nn.Module):
    """A decoder with ``depth`` conv blocks and a total upsampling stride ``stride``.

    The code has ``in_channels`` channels at ``(H / stride, W / stride)``; ``log2(stride)``
    of the blocks are preceded by a ×2 upsampling (the last ones, so that every variant ends
    with full-resolution blocks in the same place). A block is zero-padded 3×3 conv → batch
    norm → LeakyReLU(0.2); a 1×1 conv and a sigmoid make the image.

    Examples
    --------
    >>> net = StrideDecoder(stride=4, depth=3, channels=8, out_channels=1)
    >>> net.input_shape(16, 16)
    (8, 4, 4)
    >>> net(torch.rand(1, 8, 4, 4)).shape
    torch.Size([1, 1, 16, 16])
    """

    def __init__(self, stride: int = 32, depth: int = 6, channels: int = 32,
                 out_channels: int = 1, in_channels: int | None = None,
                 upsample: str = "bilinear", seed: int = 0) -> None:
        super().__init__()
        stages = int(round(math.log2(stride)))
        if stride < 1 or 2**stages != stride:
            raise ValueError(f"stride must be a power of 2, got {stride}")
        if stages > depth:
            raise ValueError(f"stride {stride} needs at least {stages} blocks, got depth={depth}")
        self.stride, self.depth, self.in_channels = stride, depth, in_channels or channels
        self.lipschitz_lambda = None
        layers: list[nn.Module] = []
        for block in range(depth):
            if block >= depth - stages:
                layers.append(nn.Upsample(scale_factor=2, mode=upsample))
            layers += [nn.Conv2d(self.in_channels if block == 0 else channels, channels, 3,
                                 padding=1), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(channels, out_channels, 1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
        from .models import init_weights

        init_weights(self, seed)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)

    def required_multiple(self) -> int:
        return self.stride

    def min_size(self) -> int:
        return self.stride

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.in_channels, height // self.stride, width // self.stride


def stride_fits(task: Task, strides: Sequence[int] = (4, 32), depth: int = 6,
                channels: int = 32, iterations: int = 1000, every: int = 50, seed: int = 0,
                device: str | torch.device = "cpu") -> dict[int, FitResult]:
    """Fit ``task`` with a :class:`StrideDecoder` of each stride (same depth, same seed)."""
    fits = {}
    for stride in strides:
        model = StrideDecoder(stride, depth, channels, out_channels=task.channels, seed=seed)
        fits[stride] = fit(task, model=model, iterations=iterations, seed=seed, device=device,
                           input_kind="noise", backtracking=False, metrics_every=every,
                           log_every=every, keep_outputs=range(0, iterations, every),
                           progress=False)
    return fits


def _log_profile(image: Tensor) -> Tensor:
    return torch.log10(_power_2d(spectral.to_grey(image)).clamp_min(1e-12))


def spectrum_error(result: FitResult, target: Tensor) -> pd.DataFrame:
    """``|log10 P_out(r) − log10 P_target(r)|`` of every kept output (rows: iteration).

    ``P`` is the radially averaged power spectrum (cycles per image, radius 0 … min(H, W)/2).
    """
    reference = _log_profile(target)[0]
    rows = {it: (_log_profile(out)[0] - reference).abs().numpy()
            for it, out in sorted(result.snapshots.items())}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name, frame.columns.name = "iteration", "frequency"
    return frame


def high_frequency_energy(image: Tensor, cutoff: float = 0.5) -> float:
    """Share of the (non-DC) power of the grey image above ``cutoff`` × the Nyquist radius.

    Lower = smoother.

    Examples
    --------
    >>> flat = torch.full((1, 1, 16, 16), 0.5)
    >>> noisy = flat + 0.1 * torch.randn(1, 1, 16, 16)
    >>> high_frequency_energy(noisy.clamp(0, 1)) > high_frequency_energy(
    ...     gaussian_blur(noisy, 2.0).clamp(0, 1))
    True
    """
    profile = _power_2d(spectral.to_grey(image))[0, 1:]
    radius = torch.arange(1, len(profile) + 1, dtype=profile.dtype)
    # weight each radius by its ring's circumference: the profile is a mean over the ring
    power = profile * radius
    return float(power[radius > cutoff * len(profile)].sum() / power.sum())


def smoothness_table(fits: Mapping[int, FitResult], target: Tensor, iterations: Sequence[int],
                     cutoff: float = 0.5) -> pd.DataFrame:
    """:func:`high_frequency_energy` of each stride's output at each iteration (and target).

    Rows: iteration (kept outputs nearest to those asked), plus ``"target"``; columns: stride.
    """
    table = {}
    for stride, result in fits.items():
        kept = np.array(sorted(result.snapshots))
        column = {}
        for it in iterations:
            nearest = int(kept[np.abs(kept - it).argmin()])
            column[it] = high_frequency_energy(result.snapshots[nearest], cutoff)
        column["target"] = high_frequency_energy(target, cutoff)
        table[stride] = column
    frame = pd.DataFrame(table)
    frame.index.name, frame.columns.name = "iteration", "stride"
    return frame


def smoother(table: pd.DataFrame, first: int, second: int, iteration: int | None = None) -> bool:
    """Whether stride ``first`` has less high-frequency power than ``second`` (at ``iteration``,
    else at every compared iteration)."""
    rows = [iteration] if iteration is not None else [i for i in table.index if i != "target"]
    return bool((table.loc[rows, first] < table.loc[rows, second]).all())


def larger_high_error(errors: Mapping[int, pd.DataFrame], first: int, second: int,
                      iteration: int, cutoff: float = 0.5) -> bool:
    """Whether stride ``first`` has the larger mean spectrum error above ``cutoff`` × Nyquist."""

    def high(error: pd.DataFrame) -> float:
        row = error.iloc[np.abs(error.index.to_numpy() - iteration).argmin()]
        return float(row[row.index > cutoff * row.index.max()].mean())

    return bool(high(errors[first]) > high(errors[second]))


# ----------------------------------------------------------------------------------------------
# 11: the architecture table
# ----------------------------------------------------------------------------------------------


def table_images(factor: int = 4, names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The nine denoising images of the paper data, downsampled by ``factor`` (both sides).

    Names are the file stems (``image_Baboon512rgb`` …); ``names`` selects by substring.
    """
    images = {}
    for relpath in data.paper_images("denoising"):
        stem = Path(relpath).stem
        if names and not any(n.lower() in stem.lower() for n in names):
            continue
        full = data.paper_image(relpath)
        height, width = full.shape[-2:]
        images[stem] = data.paper_image(relpath, size=(height // factor, width // factor))
    if not images:
        raise ValueError(f"no denoising image matches {list(names or [])}; the names are "
                         f"{[Path(p).stem for p in data.paper_images('denoising')]}")
    return images


def architecture_table(images: Mapping[str, Tensor], seeds: Sequence[int] = (0, 1, 2),
                       iterations: Mapping[str, int] | int = 2000,
                       architectures: Sequence[str] = ARCHITECTURES, sigma: float = 25 / 255,
                       dip_channels: int = 128, device: str | torch.device = "cpu",
                       on_row: Callable[[dict], None] | None = None,
                       log_every: int = 1) -> pd.DataFrame:
    """Oracle denoising PSNR of each architecture, image and seed (Chakrabarty & Maji's table).

    The noise of image ``i`` and seed ``s`` is drawn with seed ``s`` and is the same for every
    architecture; the network's initialisation and code use seed ``s`` too. PSNR is the best
    over the trajectory, against the clean image, read every ``log_every`` iterations (1: every
    iterate; more skips ReLUNet's whole-image pass on the other steps, several times cheaper).
    Plain DIP: no backtracking, no λ or σ control; Adam with :data:`LEARNING_RATES`.

    Returns
    -------
    pandas.DataFrame
        Columns: image, architecture, seed, iterations, lr, psnr (best), best_iteration,
        noisy_psnr, wall_time_s.
    """
    run_device = resolve_device(device)
    rows = []
    for name, clean in images.items():
        for seed in seeds:
            task = Denoise(sigma, clean=clean, seed=seed)
            noisy = float(metrics.psnr(task.observation, clean)[0])
            for arch in architectures:
                its = iterations if isinstance(iterations, int) else iterations[arch]
                model, kind = build_architecture(arch, task.output_size, task.channels,
                                                 seed=seed, dip_channels=dip_channels)
                lr = LEARNING_RATES.get(arch, 1e-3)
                result = fit(task, model=model, iterations=its, lr=lr, seed=seed,
                             device=run_device, input_kind=kind, backtracking=False,
                             metrics_every=0, log_every=log_every, progress=False)
                best_iteration, best = result.peak("psnr")
                row = dict(image=name, architecture=arch, seed=seed, iterations=its, lr=lr,
                           psnr=best, best_iteration=best_iteration, noisy_psnr=noisy,
                           wall_time_s=round(result.wall_time, 2))
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                del model, result
    return pd.DataFrame(rows)


def image_label(stem: str) -> str:
    """A paper image's display name: ``image_Baboon512rgb`` → ``Baboon``, ``kodim01`` as is.

    Examples
    --------
    >>> image_label("image_F16_512rgb"), image_label("image_House256rgb"), image_label("kodim12")
    ('F16', 'House', 'kodim12')
    """
    label = stem.removeprefix("image_")
    for suffix in ("_512rgb", "512rgb", "256rgb"):
        label = label.removesuffix(suffix)
    return label


def summarise_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per image and architecture, plus the average row.

    Images are shown by :func:`image_label`, in case-insensitive alphabetical order (the
    poster's). The average row is the mean over images of the per-image means (± the std over
    seeds of the per-seed averages over images).
    """
    order = [a for a in ARCHITECTURES if a in set(rows["architecture"])]
    order += sorted(set(rows["architecture"]) - set(order))
    rows = rows.assign(image=rows["image"].map(image_label))
    grouped = rows.groupby(["image", "architecture"])["psnr"]
    mean = grouped.mean().unstack()[order]
    std = grouped.std(ddof=0).unstack()[order]
    images = sorted(mean.index, key=str.lower)
    mean, std = mean.loc[images], std.loc[images]
    per_seed = rows.groupby(["seed", "architecture"])["psnr"].mean().unstack()[order]
    table = pd.DataFrame(index=[*mean.index, "Average"], columns=order, dtype=object)
    for arch in order:
        for image in mean.index:
            table.loc[image, arch] = f"{mean.loc[image, arch]:.2f} ± {std.loc[image, arch]:.2f}"
        table.loc["Average", arch] = (f"{mean[arch].mean():.2f} ± "
                                      f"{per_seed[arch].std(ddof=0):.2f}")
    table.index.name = "image"
    return table


def results_path(stem: str = "architectures", suffix: str = ".csv") -> Path:
    """``<checkout>/results/<stem><suffix>``: the committed tables beside the package."""
    return Path(__file__).resolve().parent.parent / "results" / f"{stem}{suffix}"


def read_table(path: str | Path) -> pd.DataFrame:
    """Rows written by :func:`write_table` (``<stem>.csv``): a path, or the stem of a committed
    table in ``results/`` (``"architectures"``)."""
    path = Path(path)
    if not path.suffix:
        path = results_path(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; run `dipspec table "
                                f"architectures --out {path.parent}` first")
    return pd.read_csv(path)


def table_provenance(path: str | Path) -> dict:
    """The provenance JSON beside a table's CSV (``<stem>.json``; a bare stem as in
    :func:`read_table`)."""
    path = Path(path)
    if not path.suffix:
        path = results_path(str(path))
    return json.loads(path.with_suffix(".json").read_text())


def best_is(rows: pd.DataFrame, architecture: str) -> bool:
    """Whether ``architecture`` has the highest mean PSNR over all images and seeds."""
    means = rows.groupby("architecture")["psnr"].mean()
    return bool(means.idxmax() == architecture)


def beats(rows: pd.DataFrame, architecture: str, others: Sequence[str],
          per_image: bool = True) -> bool:
    """Whether ``architecture``'s mean PSNR beats each of ``others`` (on every image, or on
    the mean over images)."""
    keys = ["image", "architecture"] if per_image else ["architecture"]
    means = rows.groupby(keys)["psnr"].mean()
    if not per_image:
        return bool(all(means[architecture] > means[o] for o in others))
    table = means.unstack()
    return bool(all((table[architecture] > table[o]).all() for o in others))


def gain_over_noisy(rows: pd.DataFrame, architecture: str) -> float:
    """Mean gain in dB of ``architecture``'s best PSNR over the noisy input's PSNR."""
    part = rows[rows["architecture"] == architecture]
    return float((part["psnr"] - part["noisy_psnr"]).mean())


def _markdown(table: pd.DataFrame, header: str) -> str:
    columns = [table.index.name or "", *table.columns]
    lines = [header, "", "| " + " | ".join(columns) + " |",
             "|" + "|".join(["---"] + [":---:"] * len(table.columns)) + "|"]
    for index, row in table.iterrows():
        label = f"**{index}**" if index == "Average" else str(index)
        lines.append("| " + " | ".join([label, *map(str, row.tolist())]) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: pd.DataFrame, folder: str | Path, provenance: Mapping,
                stem: str = "architectures") -> dict[str, Path]:
    """Write ``<stem>.csv`` (one row per fit), ``<stem>.md`` (the summary) and ``<stem>.json``.

    Each file is written to a temporary name first and moved into place.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = summarise_table(rows)
    its = provenance.get("iterations", {})
    header = (f"Denoising PSNR (dB), best over the trajectory (oracle), mean ± std over "
              f"{rows['seed'].nunique()} seeds; σ = 25/255; paper images downsampled "
              f"×{provenance.get('factor', 4)}; iterations per model: "
              + ", ".join(f"{k} {v}" for k, v in its.items())
              + "; Adam learning rates: "
              + ", ".join(f"{k} {v:g}" for k, v in provenance.get("learning_rates", {}).items())
              + f"; DIP = encoder–decoder of width {provenance.get('dip_channels')}, 5 scales, "
              f"zero padding. " + _run_description(provenance)
              + (f" {provenance['note']}" if provenance.get("note") else ""))
    paths = {"csv": folder / f"{stem}.csv", "md": folder / f"{stem}.md",
             "json": folder / f"{stem}.json"}
    contents = {"csv": rows.to_csv(index=False), "md": _markdown(table, header),
                "json": json.dumps(dict(provenance), indent=1, default=str) + "\n"}
    for key, path in paths.items():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(contents[key])
        tmp.replace(path)
    return paths


#: Provenance fields that describe one run; a table updated column by column keeps them per
#: architecture under ``"columns"``.
_RUN_FIELDS = ("commit", "device", "torch", "wall_time_s", "psnr")
#: Settings every column of one table must share.
_SHARED_FIELDS = ("factor", "sigma", "seeds", "images")


def check_updatable(folder: str | Path, provenance: Mapping,
                    stem: str = "architectures") -> tuple[pd.DataFrame, dict]:
    """The table in ``folder`` (rows, provenance), if fits with ``provenance`` may update it.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no ``<stem>.csv`` and ``<stem>.json``.
    ValueError
        If the table was run on other images, seeds, σ or downsampling factor.
    """
    folder = Path(folder)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    if not (csv_path.is_file() and json_path.is_file()):
        raise FileNotFoundError(f"no table to update in {folder} (needs {stem}.csv and "
                                f"{stem}.json); run without --update first")
    old = json.loads(json_path.read_text())
    for key in _SHARED_FIELDS:
        if json.loads(json.dumps(provenance.get(key), default=str)) != old.get(key):
            raise ValueError(f"the table in {folder} was run with {key} = {old.get(key)!r}, "
                             f"these fits with {provenance.get(key)!r}; update it with the "
                             f"same {key} or write a new table elsewhere")
    return pd.read_csv(csv_path), old


def update_table(rows: pd.DataFrame, folder: str | Path, provenance: Mapping,
                 stem: str = "architectures") -> dict[str, Path]:
    """Replace the columns of ``rows``' architectures in the table written to ``folder``.

    The other architectures' rows stay as they are. Provenance is kept per column
    (``"columns"``: commit, device, torch, wall time and PSNR reading of the run that produced
    it), so a table assembled from several runs says where each column comes from. The old
    table's ``"note"`` is dropped (it described the replaced columns); ``provenance`` may bring
    a new one. Raises as :func:`check_updatable`.
    """
    old_rows, old = check_updatable(folder, provenance, stem)
    replaced = list(dict.fromkeys(rows["architecture"]))
    columns = old.get("columns") or {arch: {k: old.get(k) for k in _RUN_FIELDS}
                                     for arch in dict.fromkeys(old_rows["architecture"])}
    info = dict(old)
    info["iterations"] = {**old.get("iterations", {}),
                          **{a: provenance["iterations"][a] for a in replaced}}
    info["learning_rates"] = {**old.get("learning_rates", {}),
                              **provenance.get("learning_rates", {})}
    info["columns"] = {**columns, **{a: {k: provenance.get(k) for k in _RUN_FIELDS}
                                     for a in replaced}}
    for key in ("commit", "wall_time_s") + (("dip_channels",) if "DIP" in replaced else ()):
        info[key] = provenance.get(key)
    info.pop("note", None)  # it spoke of the columns as they were
    if provenance.get("note"):
        info["note"] = provenance["note"]
    merged = pd.concat([old_rows[~old_rows["architecture"].isin(replaced)], rows],
                       ignore_index=True)
    return write_table(merged, folder, info, stem)


def _run_description(provenance: Mapping) -> str:
    columns = provenance.get("columns")
    if not columns:
        return (f"Device {provenance.get('device')}, wall time {provenance.get('wall_time_s')} "
                f"s, commit {provenance.get('commit')}.")
    runs: dict[tuple, list[str]] = {}  # one run's fields -> the columns it produced
    for arch, run in columns.items():
        runs.setdefault(tuple(run.get(k) for k in _RUN_FIELDS), []).append(arch)
    parts = []
    for values, archs in runs.items():
        run = dict(zip(_RUN_FIELDS, values))
        parts.append(f"{', '.join(archs)}: device {run['device']}, wall time "
                     f"{run['wall_time_s']} s, commit {run['commit']}"
                     + (f", PSNR {run['psnr']}" if run["psnr"] else "") + ".")
    return " ".join(parts)


def machine() -> str:
    """A one-line description of the CPU or GPU the runs use."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


# ----------------------------------------------------------------------------------------------
# notebook set-up and figures (matplotlib only through dipspec.plots, imported lazily)
# ----------------------------------------------------------------------------------------------


def setup(preset: str, quick: Mapping, paper: Mapping, seed: int = 0) -> dict:
    """The settings of a notebook: ``quick`` or ``paper`` by the resolved preset, seeded.

    ``preset`` is ``"auto"`` (paper on a GPU, quick on a CPU), ``"quick"`` or ``"paper"``.
    Seeds torch globally (notebooks only) and returns the chosen settings plus ``scale`` (the
    preset's name) and ``device``.

    Examples
    --------
    >>> setup("quick", {"size": 32}, {"size": 256})["size"]
    32
    """
    from .presets import resolve

    device = resolve_device("auto")
    chosen = resolve(preset, device)
    torch.manual_seed(seed)
    settings = dict(paper if chosen.name == "paper" else quick)
    settings.update(scale=chosen.name, device=str(device))
    return settings


def _plt():
    from .plots import _plt as plt

    return plt()


def figure_trajectories(distance: pd.Series, sweep: pd.DataFrame, images: Mapping[str, Tensor],
                        sweep_images: Mapping[str, Tensor], rise: float = 1.3, smooth: int = 5):
    """Trajectory distance (meetings marked), the outputs at the meetings, and the sweep."""
    from .plots import STOP_COLOUR, show_images

    plt = _plt()
    columns = max(len(images), len(sweep_images), 4)
    fig = plt.figure(figsize=(1.7 * columns, 7.6))
    grid = fig.add_gridspec(3, columns, height_ratios=[2.2, 1, 1])
    left = fig.add_subplot(grid[0, : columns // 2])
    left.semilogy(distance.index, distance.values, color="#1f4e9c", linewidth=1.2)
    for k, it in enumerate(meetings(distance, rise, smooth)):
        left.axvline(it, color=STOP_COLOUR, linestyle="--", linewidth=1.2,
                     label="meetings" if k == 0 else None)
    left.set(xlabel="iteration", ylabel="mean squared distance", title="two fits, one image")
    left.legend()
    right = fig.add_subplot(grid[0, columns // 2:])
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, sweep.shape[1]))
    for colour, column in zip(colours, sweep.columns):
        right.semilogy(sweep.index, sweep[column], color=colour, linewidth=1.2,
                       label=f"lines {column:.0%} of the side")
    right.set(xlabel="iteration", ylabel="mean squared distance", title="synthetic sweep")
    right.legend(fontsize=7)
    for row, shown in ((1, images), (2, sweep_images)):
        axes = [fig.add_subplot(grid[row, i]) for i in range(len(shown))]
        show_images(shown, axes=axes)
        for ax in axes:
            ax.title.set_fontsize(6)
    fig.tight_layout()
    return fig


def figure_noise_fits(fits: Mapping[str, FitResult], curves: Mapping[str, pd.DataFrame],
                      show: Sequence[int], clean: Tensor):
    """Per noise: observation and outputs at ``show`` iterations, fitted fractions, FBC."""
    from .plots import plot_fbc, show_images

    plt = _plt()
    rows = len(fits)
    fig, axes = plt.subplots(rows, len(show) + 4, figsize=(2.1 * (len(show) + 4), 2.3 * rows),
                             squeeze=False)
    for r, (label, result) in enumerate(fits.items()):
        images = {"clean": clean, f"{label} noise": result.task.observation}
        images.update({f"iteration {it}": result.snapshots[it] for it in show})
        show_images(images, axes=axes[r, : len(images)])
        ax = axes[r, len(images)]
        curve = curves[label]
        ax.plot(curve.index, curve["noise"], label="noise", color="#c0392b")
        ax.plot(curve.index, curve["texture"], label="fine texture", color="#1f4e9c")
        ax.set(xlabel="iteration", ylabel="fraction fitted", ylim=(-0.1, 1.1))
        ax.legend(fontsize=7)
        plot_fbc(result, ax=axes[r, len(images) + 1], title=f"FBC, {label} noise")
    fig.tight_layout()
    return fig


def figure_init_spectra(spectra: Mapping[str, pd.DataFrame],
                        examples: Mapping[str, Tensor] | None = None):
    """Log-log mean power spectra at initialisation (one panel per entry, a line per column)."""
    from .plots import show_images

    plt = _plt()
    extra = len(examples or {})
    fig, axes = plt.subplots(1, len(spectra) + extra, figsize=(3.6 * len(spectra) + 2 * extra,
                                                                3.2), squeeze=False)
    for ax, (title, frame) in zip(axes[0], spectra.items()):
        colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, frame.shape[1]))
        for colour, column in zip(colours, frame.columns):
            depth, std = column
            slope = spectral_slope(frame[column])
            ax.loglog(frame.index, frame[column], color=colour, linewidth=1.2,
                      label=f"depth {depth}, σ_in {std:g} (slope {slope:.2f})")
        ax.set(xlabel="frequency (cycles per signal)", ylabel="normalised power", title=title)
        ax.legend(fontsize=6)
    if examples:
        show_images(examples, axes=axes[0, len(spectra):])
    fig.tight_layout()
    return fig


def figure_stride(fits: Mapping[int, FitResult], errors: Mapping[int, pd.DataFrame],
                  iteration: int, clean: Tensor):
    """Outputs at ``iteration`` and the power-spectrum error over iterations per stride."""
    from .plots import show_images

    plt = _plt()
    fig, axes = plt.subplots(1, 2 + len(errors) + 1, figsize=(3.0 * (3 + len(errors)), 3.0))
    images = {"target": clean}
    images.update({f"stride {s}, iteration {iteration}": f.snapshots[iteration]
                   for s, f in fits.items()})
    show_images(images, axes=axes[: len(images)])
    vmax = max(float(e.to_numpy().max()) for e in errors.values())
    for ax, (stride, error) in zip(axes[len(images):], errors.items()):
        shown = ax.imshow(error.to_numpy().T, origin="lower", aspect="auto", cmap="magma",
                          vmin=0, vmax=vmax,
                          extent=(error.index[0], error.index[-1], 0, error.shape[1] - 1))
        ax.set(xlabel="iteration", ylabel="frequency (cycles per image)",
               title=f"|log10 power error|, stride {stride}")
        ax.grid(False)
    fig.colorbar(shown, ax=axes[-1])
    fig.tight_layout()
    return fig


def figure_table(rows: pd.DataFrame):
    """Bar chart of the oracle PSNR per image and architecture (mean over seeds, ± std)."""
    plt = _plt()
    order = [a for a in ARCHITECTURES if a in set(rows["architecture"])]
    rows = rows.assign(image=rows["image"].map(image_label))
    mean = rows.groupby(["image", "architecture"])["psnr"].mean().unstack()[order]
    std = rows.groupby(["image", "architecture"])["psnr"].std(ddof=0).unstack()[order]
    images = sorted(mean.index, key=str.lower)
    mean, std = mean.loc[images], std.loc[images]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(mean)), 3.4))
    mean.plot.bar(yerr=std, ax=ax, width=0.8, capsize=2, rot=0)
    ax.axhline(float(rows["noisy_psnr"].mean()), color="grey", linestyle=":",
               label="noisy input")
    its = rows.groupby("architecture")["iterations"].max()
    ax.set(ylabel="best PSNR (dB)", xlabel="",
           ylim=(max(0.0, float(mean.min().min()) - 3), float(mean.max().max()) + 1),
           title="iterations: " + ", ".join(f"{a} {its[a]}" for a in order))
    ax.legend(fontsize=7, ncol=len(order) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig
