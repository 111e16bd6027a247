"""Set-up of the Shi et al. reproductions: figure defaults, :class:`Setup`, images, tasks and
networks.

:func:`configure` resolves a notebook's ``parameters`` cell (its preset plus a few cost knobs)
into a :class:`Setup`; :func:`load`, :func:`denoising_task` and :func:`application_tasks` give
the images and tasks of the paper's figures, :func:`make_model` the networks at the setup's
width.

Examples
--------
>>> setup = configure("lipschitz_control", "quick", device="cpu")
>>> setup.preset.image_size, setup.lambdas, setup.iterations
(64, (1.0, 1.2, 2.0), 2000)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import data, tasks
from ..fitting import FitResult
from ..nn import ConvNet, Decoder, SkipNet
from ..presets import Preset, resolve, resolve_device
from . import fallback
from .provenance import provenance

__all__ = [
    "ARCHITECTURES",
    "FIGURES",
    "OURS",
    "Setup",
    "application_tasks",
    "configure",
    "degraded_view",
    "degraded_views",
    "denoising_task",
    "load",
    "make_model",
]


#: Per-figure defaults for each preset: the images and the iteration count (the paper's on
#: ``paper``; on ``quick`` the smallest run that keeps every finding of the notebook true).
FIGURES: dict[str, dict[str, dict]] = {
    "quickstart": {
        "quick": {"images": ("Peppers",), "iterations": 1000},
        "paper": {"images": ("Peppers",), "iterations": 3000},
    },
    "fbc_noise": {
        "quick": {"images": ("Peppers",), "iterations": 2000},
        "paper": {"images": ("Peppers", "F16", "Lena"), "iterations": 5000},
    },
    "architecture": {
        "quick": {"images": ("Peppers",), "iterations": 600},
        "paper": {"images": ("Peppers",), "iterations": 5000},
    },
    "lipschitz_control": {
        "quick": {"images": ("Peppers",), "iterations": 2000},
        "paper": {"images": ("Peppers",), "iterations": 10000},
    },
    "gaussian_control": {
        "quick": {"images": ("Peppers",), "iterations": 1500},
        "paper": {"images": ("Peppers",), "iterations": 10000},
    },
    "automatic_stop": {
        "quick": {"images": ("Peppers",), "iterations": 3000},
        "paper": {"images": ("Peppers", "F16", "Lena"), "iterations": 10000},
    },
    "applications": {
        "quick": {"images": ("F16",), "iterations": 2000, "task_iterations": 500},
        "paper": {"images": ("Baboon", "F16", "House"), "iterations": 20000,
                  "task_iterations": 10000},
    },
}


#: The architectures of the architecture notebook: label → (model kind, input code).
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "DIP encoder–decoder": ("skip", "noise"),
    "decoder": ("decoder", "fourier"),
    "ConvNet without upsampling": ("convnet", "fourier"),
}


#: The label of the controlled decoder in the applications.
OURS = "ours (λ control)"


_SHORT_NAMES = {
    "baboon": "denoising/image_Baboon512rgb.png",
    "f16": "denoising/image_F16_512rgb.png",
    "house": "denoising/image_House256rgb.png",
    "lena": "denoising/image_Lena512rgb.png",
    "peppers": "denoising/image_Peppers512rgb.png",
    "tulips": "enhancement/tulips.bmp",
    "vase": "inpainting/vase.png",
    "library": "inpainting/library.png",
}


@dataclass(frozen=True)
class Setup:
    """Everything a notebook's runs depend on, resolved from its ``parameters`` cell.

    Attributes
    ----------
    figure : str
        The paper figure (a key of :data:`FIGURES`), also the saved figure's name.
    preset : Preset
        The run scale, with the notebook's ``image_size`` / ``channels`` overrides applied.
    images : tuple of str
        Image names for :func:`load`.
    iterations : int
        Iterations of each fit.
    lambdas, sigmas : tuple of float
        The (over-smooth, right, decaying) λ triple and the σ sweep of this scale.
    metrics_every : int
        Iterations between FBC / blur-sharpness evaluations.
    smooth : int
        Window (iterations) of the centred rolling mean that peaks are judged on.
    seed : int
    device : torch.device
    extra : dict
        Figure-specific knobs (e.g. ``task_iterations`` of the applications).
    """

    figure: str
    preset: Preset
    images: tuple[str, ...]
    iterations: int
    lambdas: tuple[float, ...]
    sigmas: tuple[float, ...]
    metrics_every: int
    smooth: int
    seed: int
    device: torch.device
    extra: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int | None:
        return self.preset.image_size

    @property
    def gaussian_lambda(self) -> float:
        """λ of the σ sweep's convolutions (the preset's; the paper's σ figure is λ-controlled)."""
        return self.preset.gaussian_lambda

    @property
    def lipschitz_lambda(self) -> float:
        """The denoising λ of this scale (the preset's; "ours" in the applications)."""
        return self.preset.lipschitz_lambda

    def provenance(self, results=None, **extra) -> dict:
        """Provenance for :func:`dipspec.plots.save_figure` (preset, sizes, seed, commit, time)."""

        flat = _flatten(results)
        # Members of one fit_many batch all report the batch's wall time: count it once.
        wall = {"wall_time_s": round(sum({r.wall_time for r in flat}), 1)} if flat else {}
        return provenance(self.preset, flat, figure=self.figure, channels=self.preset.channels,
                          images=list(self.images), metrics_every=self.metrics_every,
                          **wall, **extra)


def _flatten(results) -> list[FitResult]:
    """Fit results out of a list, a mapping, or a mapping of mappings (image → method → fit)."""
    if results is None:
        return []
    values = results.values() if isinstance(results, Mapping) else results
    flat: list[FitResult] = []
    for value in values:
        flat.extend(_flatten(value) if isinstance(value, Mapping) else [value])
    return flat


def configure(figure: str, preset: str | Preset = "auto", *, images: Sequence[str] | None = None,
              image_size: int | None = None, channels: int | None = None,
              iterations: int | None = None, lambdas: Sequence[float] | None = None,
              sigmas: Sequence[float] | None = None, metrics_every: int | None = None,
              task_iterations: int | None = None, seed: int = 0,
              device: str | torch.device = "auto") -> Setup:
    """Resolve a notebook's parameters into a :class:`Setup`; ``None`` means "preset default".

    Parameters
    ----------
    figure : str
        A key of :data:`FIGURES` (``"fbc_noise"``, ``"lipschitz_control"``, …).
    preset : {"auto", "quick", "paper"} or Preset
        ``"auto"`` is ``paper`` on a GPU and ``quick`` on a CPU.
    images, image_size, channels, iterations, lambdas, sigmas, metrics_every
        Overrides of the preset's (and the figure's) defaults.
    task_iterations : int, optional
        Iteration cap of each application's restoration (``"applications"`` only).
    seed : int
    device : {"auto", "cpu", "cuda", ...}

    Raises
    ------
    ValueError
        For an unknown figure or preset.
    """
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; choose one of {sorted(FIGURES)}")
    run_device = resolve_device(device)
    scale = resolve(preset, run_device)
    changes = {key: value for key, value in
               (("image_size", image_size), ("channels", channels)) if value is not None}
    if changes:
        scale = scale.with_(**changes)
    defaults = FIGURES[figure]["paper" if scale.name == "paper" else "quick"]
    iterations = int(iterations or defaults["iterations"])
    if metrics_every is None:
        metrics_every = 5 if scale.name != "paper" else 10
    extra = {key: value for key, value in defaults.items() if key not in ("images", "iterations")}
    if task_iterations is not None:
        extra["task_iterations"] = int(task_iterations)
    return Setup(
        figure=figure, preset=scale, images=tuple(images or defaults["images"]),
        iterations=iterations,
        lambdas=tuple(float(v) for v in (lambdas or scale.lipschitz_lambdas)),
        sigmas=tuple(float(v) for v in (sigmas or scale.gaussian_sigmas)),
        metrics_every=int(metrics_every), smooth=max(10, iterations // 100), seed=int(seed),
        device=run_device, extra=extra,
    )


def _paper_path(name: str) -> str | None:
    key = name.lower()
    if key in _SHORT_NAMES:
        return _SHORT_NAMES[key]
    if name in data.paper_registry():
        return name
    matches = [p for p in data.paper_images() if key in p.rsplit("/", 1)[-1].lower()]
    return matches[0] if matches else None


def load(name: str, size: int | None = None, gray: bool = False, *,
         preset: str | Preset | None = None) -> torch.Tensor:
    """An image by short name: a paper image (``"Peppers"``, ``"F16"``, ``"tulips"``, or any
    path of :func:`dipspec.data.paper_images`) or an embedded one (``"astronaut"``).

    Paper images come from ``$DIPSPEC_DATA_MIRROR`` when set, else a verified download. With
    ``preset="quick"`` an unreachable paper image falls back to an embedded stand-in, with one
    printed line (:mod:`dipspec.experiments.fallback`); otherwise the error is raised.

    Examples
    --------
    >>> load("camera", size=32).shape
    torch.Size([1, 1, 32, 32])
    """
    if name in data.EMBEDDED_IMAGES:
        return data.load_image(name, gray=gray, size=size)
    relpath = _paper_path(name)
    if relpath is None:
        raise ValueError(f"unknown image {name!r}; use a paper image ({', '.join(_SHORT_NAMES)}, "
                         f"or a path from dipspec.data.paper_images()) or an embedded one "
                         f"({', '.join(data.EMBEDDED_IMAGES[:4])}, …)")
    return fallback.paper_image(relpath, gray=gray, size=size, preset=preset, label=name)


def denoising_task(name: str, setup: Setup, noise_sigma: float = 25.0) -> tasks.Denoise:
    """The paper's denoising task (σ in 8-bit units, 25 by default) on image ``name``."""
    clean = load(name, setup.image_size, preset=setup.preset)
    return tasks.Denoise(noise_sigma / 255.0, clean=clean, seed=setup.seed)


def _region_mask(name: str, size: int | None, preset: Preset) -> torch.Tensor:
    """A region mask resized and cropped exactly like its image (then thresholded at ½)."""
    _, shape, _ = fallback.stand_in(f"inpainting/{name}.png")  # the image's own (H, W)
    mask = fallback.region_mask(f"inpainting/{name}_mask.png", shape, preset=preset)
    if size is None:
        return mask
    resized = data._array_to_tensor(mask[0, 0].numpy(), gray=True, size=size,
                                    source=f"the {name} mask")
    return (resized > 0.5).to(torch.float32)


def application_tasks(setup: Setup) -> dict[str, tasks.Task]:
    """The paper's applications at this scale, labelled (SPEC §8).

    Denoising (σ 25, F16 colour), JPEG deblocking (quality 10, classic5 Barbara grey), inpainting
    with a Bernoulli(½) mask (Barbara; the shipped mask at full size, a drawn one when resized)
    and with a region mask (vase), super-resolution ×4 (House) and detail enhancement (tulips).
    """
    size, seed, preset = setup.image_size, setup.seed, setup.preset
    barbara = "inpainting/Dataset_Bernoulli/img/barbara.png"
    bernoulli = (tasks.Inpaint(data.paper_mask(barbara), clean=load(barbara), seed=seed)
                 if size is None else tasks.Inpaint(keep=0.5, clean=load(barbara, size,
                                                                          preset=preset),
                                                    seed=seed))
    vase = load("vase", size, preset=preset)
    return {
        "denoising": tasks.Denoise(25 / 255, clean=load("F16", size, preset=preset), seed=seed),
        "JPEG deblocking": tasks.Deblock(10, clean=load("deblocking/classic5/barbara.bmp", size,
                                                        preset=preset), seed=seed),
        "inpainting (Bernoulli)": bernoulli,
        "inpainting (region)": tasks.Inpaint(_region_mask("vase", size, preset),
                                             clean=vase, seed=seed),
        "super-resolution ×4": tasks.SuperResolve(4, clean=load("House", size, preset=preset),
                                                  seed=seed),
        "detail enhancement": tasks.Enhance(clean=load("tulips", size, preset=preset),
                                            seed=seed),
    }


def degraded_views(task_list: Mapping[str, tasks.Task]) -> dict[str, torch.Tensor]:
    """:func:`degraded_view` of every task, by label."""
    return {label: degraded_view(task) for label, task in task_list.items()}


def degraded_view(task: tasks.Task) -> torch.Tensor:
    """The observation at the clean image's size, for display and PSNR (bicubic for SR)."""
    observation = task.observation
    height, width = task.output_size
    if observation.shape[-2:] == (height, width):
        return observation
    upsampled = torch.nn.functional.interpolate(observation, size=(height, width),
                                                mode="bicubic", align_corners=False)
    return upsampled.clamp(0, 1)


def make_model(kind: str, setup: Setup, out_channels: int, *,
               lipschitz_lambda: float | None = None, upsample: str = "bilinear",
               gaussian_sigma: float | Sequence[float] | None = None) -> nn.Module:
    """A network at the setup's width: ``"decoder"``, ``"convnet"`` or ``"skip"`` (DIP).

    ``lipschitz_lambda=None`` is plain DIP; ``gaussian_sigma`` applies to ``upsample="gaussian"``
    (default: the paper's per-stage σ).
    """
    channels, seed = setup.preset.channels, setup.seed
    if kind == "decoder":
        options = {} if gaussian_sigma is None else {"gaussian_sigma": gaussian_sigma}
        return Decoder(out_channels=out_channels, channels=channels,
                       lipschitz_lambda=lipschitz_lambda, upsample=upsample, seed=seed, **options)
    if kind == "convnet":
        return ConvNet(out_channels=out_channels, channels=channels,
                       lipschitz_lambda=lipschitz_lambda, seed=seed)
    if kind == "skip":
        return SkipNet(out_channels=out_channels, channels=channels, seed=seed)
    raise ValueError(f"unknown model kind {kind!r}; choose 'decoder', 'convnet' or 'skip'")
