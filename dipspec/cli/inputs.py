"""From ``dipspec run``'s flags to a task, a model and a plan, every input checked first.

An embedded image (``astronaut``, ``camera``, …) is a clean test image: it is degraded
synthetically and the fit is scored by PSNR against it. An image file is restored as it is —
the observation is the file, there is no PSNR — unless ``--synthetic`` says the file is clean.
Everything here runs before the first iteration; a bad input is a one-line
:class:`~dipspec.cli.errors.UsageError` naming the flag as it was typed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import data, presets
from ..fitting import padded_size
from ..fitting.stops import recommended_rule
from ..measure import make_stop_rule
from ..nn import Decoder
from ..tasks import make_task
from .errors import UsageError, flag
from .estimate import WARN_SECONDS, available_memory, estimate, format_bytes, format_seconds
from .parser import PHOTO_CAP, QUICK_SIZE

__all__ = ["MIN_SIDE", "Plan", "check_device", "plan_run"]

#: Smallest side the band meter (FBC) measures: 6 pixels.
MIN_SIDE = 6
#: The paper's Gaussian σ per upsampling stage (SPEC §4).
PAPER_SIGMAS = (0.1, 0.1, 0.1, 0.5, 0.5)


@dataclass
class Plan:
    """What ``dipspec run`` will do: the task, the model and the fit's settings, plus the lines
    to print before it starts."""

    task: object
    model: Decoder
    preset: presets.Preset
    device: torch.device
    iterations: int
    headline: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)


def check_device(text: str) -> torch.device:
    """``--device`` as a torch device that exists on this machine."""
    where = f"--device {text}"
    if text == "auto":
        return presets.resolve_device("auto")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"{where}: unknown device; use auto, cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{where}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{where}: this machine has {torch.cuda.device_count()} CUDA "
                             "device(s); use --device cuda")
    elif device.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise UsageError(f"{where}: Apple's MPS is not available on this machine; use "
                             "--device cpu")
    elif device.type != "cpu":
        raise UsageError(f"{where}: dipspec runs on cpu or cuda; use --device cpu")
    return device


def plan_run(args) -> Plan:
    """Check every flag of ``dipspec run`` and build the task and model (no fitting)."""
    device = check_device(args.device)
    preset = presets.resolve(args.preset, device)
    embedded = args.image in data.EMBEDDED_IMAGES
    synthetic = args.synthetic or (embedded and not args.observed)
    _check_combinations(args, synthetic)
    image, notes, full_size = _load_image(args, preset, embedded, synthetic)
    mask = _load_mask(args, image, full_size)
    task = _task(args, image, mask, synthetic)
    model = _model(args, task, preset)
    iterations = args.iterations or min(task.default_iterations, preset.iterations)
    plan = Plan(task, model, preset, device, iterations, _headline(args, task, synthetic),
                notes=notes)
    lam = model.lipschitz_lambda
    plan.notes.append(f"model: decoder of width {args.channels or preset.channels}, "
                      f"{model.upsample} upsampling, "
                      + ("no λ control (plain DIP)" if lam is None else
                         f"λ = {lam:g}" + (" (the default)" if args.lipschitz_lambda is None
                                           else ""))
                      + f"; {iterations} iterations on {device}")
    if not embedded:
        plan.inputs["--image"] = args.image
    if args.mask:
        plan.inputs["--mask"] = args.mask
    _check_cost(args, plan)
    return plan


def _check_combinations(args, synthetic: bool) -> None:
    if args.mask is not None and args.task != "inpaint":
        raise UsageError(f"--mask is for inpaint only, not {args.task}")
    if args.task == "inpaint" and not synthetic and args.mask is None:
        raise UsageError(f"--mask: inpainting {args.image} as it is needs --mask FILE (white = "
                         "known pixels), or --synthetic to draw a random mask on a clean image")
    if args.gaussian_sigma is not None and args.upsample not in (None, "gaussian"):
        raise UsageError(f"--sigma is the σ of the Gaussian upsampling; it needs --upsample "
                         f"gaussian (or no --upsample), not --upsample {args.upsample}")
    if not synthetic:
        unused = [name for name, value in (("--noise-sigma", args.noise_sigma),
                                           ("--quality", args.quality)) if value is not None]
        if unused:
            warnings.warn(f"{', '.join(unused)} only applies to a synthetic test (--synthetic); "
                          f"{args.image} is restored as it is", stacklevel=2)


def _check_file_size(path: str) -> None:
    """Refuse a decompression bomb from its header, before decoding a single pixel."""
    from PIL import Image

    if not Path(path).expanduser().is_file():
        return  # load_image says what is wrong with the path
    limit = Image.MAX_IMAGE_PIXELS or 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(Path(path).expanduser()) as handle:
                width, height = handle.size
        except Image.DecompressionBombError:
            width = height = math.inf
        except Exception:  # noqa: BLE001 - not readable: load_image says why
            return
    if limit and width * height > limit:
        size = "" if math.isinf(width) else f"{width}×{height} pixels, "
        raise UsageError(f"--image {path}: {size}more than the {limit / 1e6:.0f} megapixels "
                         "dipspec reads (a decompression bomb?); downscale it first")


def _load_image(args, preset, embedded: bool, synthetic: bool):
    """The image at its working size, and the lines that say how it was resized."""
    notes = []
    with flag("--image", args.image):
        if not embedded:
            _check_file_size(args.image)
        image = data.load_image(args.image)
        _check_values(image)
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise UsageError(f"--image {args.image} is {width}×{height} pixels; the band meter "
                         f"needs at least {MIN_SIDE} a side")
    size = args.size
    if size is None and preset.name == "quick":
        output_scale = args.factor if args.task == "super_resolve" and not synthetic else 1
        cap = QUICK_SIZE if embedded else PHOTO_CAP // output_scale
        if max(height, width) > cap:
            size = cap
            if not embedded:
                notes.append(f"{args.image} is {width}×{height} pixels: restoring it at "
                             f"{_target(height, width, cap)[1]}×{_target(height, width, cap)[0]} "
                             f"(the quick preset's cap); pass --size 0 for the full size")
    elif size is None and preset.image_size and max(height, width) > preset.image_size:
        size = preset.image_size  # wide: the paper's images resized like the notebooks'
        notes.append(f"{args.image} is {width}×{height} pixels: restoring it at "
                     f"{_target(height, width, size)[1]}×{_target(height, width, size)[0]} "
                     f"(the {preset.name} preset's size); pass --size 0 for the full size")
    if size:
        target = _target(height, width, size)
        if min(target) < MIN_SIDE:
            raise UsageError(f"--size {size} makes the image {target[1]}×{target[0]} pixels; "
                             f"the band meter needs at least {MIN_SIDE} a side")
        if target != (height, width):
            with flag("--image", args.image):
                image = data.load_image(args.image, size=target)
    return image, notes, (height, width)


def _target(height: int, width: int, longer: int) -> tuple[int, int]:
    scale = longer / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _check_values(image: torch.Tensor) -> None:
    if not bool(torch.isfinite(image).all()):
        raise ValueError("the image holds NaN or infinite pixels; repair or re-export it")


def _load_mask(args, image: torch.Tensor, full_size: tuple[int, int]) -> torch.Tensor | None:
    """``--mask``: white (known) and black (missing) pixels, the image file's size."""
    if args.mask is None:
        return None
    import numpy as np
    from PIL import Image

    with flag("--mask", args.mask):
        path = Path(args.mask).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no such file{' (a folder)' if path.is_dir() else ''}")
        with Image.open(path) as handle:
            values = np.array(handle.convert("L"))
    height, width = full_size
    if values.shape != (height, width):
        raise UsageError(f"--mask {args.mask} is {values.shape[1]}×{values.shape[0]} pixels but "
                         f"--image {args.image} is {width}×{height}; they must match")
    grey = int(((values > 0) & (values < 255)).sum())
    if grey:
        raise UsageError(f"--mask {args.mask} has {grey} grey pixels; it must be black (missing) "
                         "and white (known) only: threshold it")
    if not values.any():
        raise UsageError(f"--mask {args.mask} is all black: no pixel is known")
    mask = torch.from_numpy((values == 255).astype(np.float32))[None, None]
    if tuple(mask.shape[-2:]) != tuple(image.shape[-2:]):
        mask = torch.nn.functional.interpolate(mask, size=tuple(image.shape[-2:]),
                                               mode="nearest")
    return mask


def _task(args, image: torch.Tensor, mask: torch.Tensor | None, synthetic: bool):
    params = {"denoise": {"sigma": (25.0 if args.noise_sigma is None else args.noise_sigma)
                          / 255.0},
              "deblock": {"quality": 10 if args.quality is None else args.quality},
              "super_resolve": {"factor": args.factor},
              "inpaint": {} if mask is None else {"mask": mask}}.get(args.task, {})
    key = "clean" if synthetic else "observation"
    with flag("--image", args.image):
        task = make_task(args.task, **params, **{key: image, "seed": args.seed})
        observed = tuple(task.observation.shape[-2:])
    sides = min(*observed, *task.output_size)
    if sides < MIN_SIDE:
        flags = "--size or --factor" if args.task == "super_resolve" else "--size"
        raise UsageError(f"{flags}: the fit would see a {observed[1]}×{observed[0]} image; the "
                         f"band meter needs at least {MIN_SIDE} pixels a side: pass a larger "
                         f"{flags.replace(' or ', ' or a smaller ')}")
    rule = getattr(args, "stop_rule", None)
    asked = f"--stop-rule {rule}" if rule else "--auto-stop"
    chosen = (make_stop_rule(rule) if rule else recommended_rule(task) if args.auto_stop
              else None)
    if chosen is not None and "ratio" in chosen.needs_meters and min(task.output_size) < 35:
        raise UsageError(f"{asked} needs an image of at least 35×35 pixels for the "
                         f"blur/sharpness ratio, got {task.output_size[1]}×"
                         f"{task.output_size[0]}; pass a larger --size or drop {asked}")
    return task


def _model(args, task, preset) -> Decoder:
    value = args.lipschitz_lambda
    # one default λ for fit(), the CLI and the notebooks: presets.default_lambda
    lam = (None if value == "off" else presets.default_lambda(task, preset) if value is None
           else value)
    upsample = args.upsample or ("gaussian" if args.gaussian_sigma is not None else "bilinear")
    sigma = PAPER_SIGMAS if args.gaussian_sigma is None else args.gaussian_sigma
    channels = args.channels or preset.channels
    with flag("--upsample", upsample):
        return Decoder(out_channels=task.channels, channels=channels, lipschitz_lambda=lam,
                       upsample=upsample, gaussian_sigma=sigma, seed=args.seed)


def _headline(args, task, synthetic: bool) -> str:
    """The first line printed: what is restored, and whether there is a PSNR."""
    name = args.image
    if not synthetic:
        extra = {"inpaint": f", known pixels from {args.mask}",
                 "super_resolve": f", upscaled ×{getattr(task, 'factor', args.factor)}",
                 "enhance": ", detail enhancement"}.get(args.task, "")
        return f"restoring {name} as given{extra} (no clean reference, no PSNR)"
    degradation = {
        "denoise": f"Gaussian noise σ={25 if args.noise_sigma is None else args.noise_sigma:g}"
                   "/255",
        "deblock": f"JPEG compression at quality {10 if args.quality is None else args.quality}",
        "inpaint": (f"the missing pixels of {args.mask}" if args.mask else
                    f"a random mask keeping {getattr(task, 'keep', 0.5):.0%} of the pixels"),
        "super_resolve": f"Lanczos-2 downsampling ×{args.factor}",
        "enhance": "no degradation (detail enhancement)"}[args.task]
    return f"synthetic test: {name} + {degradation}, PSNR against the clean image"


def _check_cost(args, plan: Plan) -> None:
    """Refuse a fit that cannot fit in memory; warn about one that takes more than 30 min."""
    height, width = padded_size(*plan.task.output_size, plan.model)
    channels = args.channels or plan.preset.channels
    parameters = sum(p.numel() for p in plan.model.parameters())
    cost = estimate(height * width, channels, parameters, plan.iterations,
                    on_cpu=plan.device.type == "cpu")
    shape = (f"{plan.task.output_size[1]}×{plan.task.output_size[0]} image, {channels} "
             f"channels, {plan.iterations} iterations")
    available = available_memory(plan.device.type)
    if available is not None and cost.bytes > available:
        if cost.history_bytes > cost.bytes / 2:
            where = f"--iterations {plan.iterations}"
            fix = "pass fewer --iterations (the history keeps a row per iteration)"
        else:
            where = (f"--size {args.size}" if args.size is not None else
                     f"--channels {args.channels}" if args.channels else f"--image {args.image}")
            fix = "pass a smaller --size (e.g. --size 512), fewer --channels or --iterations"
        raise UsageError(f"{where}: this fit needs about {format_bytes(cost.bytes)} of memory "
                         f"({shape}) but {format_bytes(available)} is available; {fix}")
    if cost.seconds is not None and cost.seconds > WARN_SECONDS:
        plan.warnings.append(f"this fit will take about {format_seconds(cost.seconds)} on this "
                             f"CPU ({shape}); --preset quick, a smaller --size, fewer "
                             "--channels or --iterations is faster")
    plan.notes.append(f"estimate: {cost.describe()} ({shape})")
