"""The keys of a sweep's configuration: what each may hold, its default, and the combinations
that cannot run.

A configuration is a flat mapping of the names :func:`dipspec.fit` and the tasks use
(:data:`KEYS`). :func:`resolve` checks one, fills in every default (the preset's width, image
size and iteration count, the task's λ and backtracking, the model's learning rate) and returns
the *full* configuration: every key present, JSON-ready. That mapping is the fit's identity in
the sweep's journal, so two spellings of one fit are one fit, and any change is a new fit.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping

from ...fitting.stops import RECOMMENDED
from ...measure import STOP_RULES, make_stop_rule
from ...nn import UPSAMPLE_MODES
from ...presets import PRESETS, default_lambda
from ...presets import resolve as preset_named
from ...tasks import TASKS, make_task
from ..chakrabarty.common import LEARNING_RATES

__all__ = ["KEYS", "MODELS", "SpecError", "canonical_model", "is_groupable", "needs_ratio",
           "parse", "resolve", "resolve_preset", "unknown_key"]


class SpecError(ValueError):
    """A sweep spec that cannot run: one line naming the entry and the fix."""


#: Every key a configuration may hold, with what it takes (defaults in brackets).
KEYS: dict[str, str] = {
    "task": "denoise, deblock, inpaint, super_resolve or enhance [denoise]",
    "image": "an embedded image (astronaut, camera, …) or a paper image (Peppers, F16, …)",
    "image_size": "side of the square crop, or [H, W] [the preset's; paper: full size]",
    "downsample": "divide the full image's sides by this instead of image_size",
    "model": "decoder, convnet, DIP (SkipNet), DIP Linear-N (LinearDIP) or ReLUNet [decoder]",
    "channels": "width of the decoder / convnet / DIP [the preset's]",
    "lipschitz_lambda": "λ > 0 or 'off' (plain DIP) [the task's for the preset]",
    "gaussian_sigma": "σ ≥ 0 of Gaussian upsampling, or one per stage [0.1,0.1,0.1,0.5,0.5]",
    "upsample": f"{', '.join(UPSAMPLE_MODES)} [bilinear; gaussian with gaussian_sigma]",
    "preset": "auto, quick, wide or paper [auto: paper on a GPU, else quick]",
    "precision": "fp32 or bf16 [the preset's]",
    "dtype": "float32 or float64 [float32]",
    "seed": "whole number ≥ 0: noise, initialisation and code [0]",
    "iterations": "whole number ≥ 1 [the task's count capped by the preset's]",
    "lr": "Adam learning rate [1e-3; DIP Linear-2048 1e-4]",
    "stop_rule": "paper, discrepancy, es-wmv, es-emv, ratio-plateau, oracle, auto or none",
    "log_every": "iterations between history rows (PSNR reads) [1]",
    "metrics_every": "iterations between FBC / ratio readings, 0 = never [1]",
    "backtracking": "true or false [the task's: denoising and deblocking on]",
    "noise_sigma": "denoise: noise std in 8-bit units, 0–255 [25]",
    "quality": "deblock: JPEG quality 1–95 [10]",
    "factor": "super_resolve: scale factor ≥ 2 [4]",
    "keep": "inpaint: fraction of pixels kept by the Bernoulli mask, (0, 1] [0.5]",
}

#: Task-specific keys and their defaults, by task.
TASK_KEYS = {"denoise": ("noise_sigma", 25.0), "deblock": ("quality", 10),
             "super_resolve": ("factor", 4), "inpaint": ("keep", 0.5)}

#: The models a sweep builds; the decoder and the convnet run batched with ``fit_many``.
MODELS = ("decoder", "convnet", "DIP", "DIP Linear-N", "ReLUNet")
_GROUPABLE = ("decoder", "convnet")
_CONTROLLED = ("decoder", "convnet")  # have λ-controlled convolutions
_WIDTH = ("decoder", "convnet", "DIP")  # take channels
_STOP_NAMES = (*sorted(STOP_RULES), "auto")


def is_groupable(model: str) -> bool:
    """Whether fits of this model run batched, K at a time (``fit_many``)."""
    return model in _GROUPABLE


def canonical_model(name: object) -> str:
    """The one spelling of a model: ``"skipnet"`` → ``"DIP"``, ``"linear-128"`` →
    ``"DIP Linear-128"``.

    Examples
    --------
    >>> canonical_model("SkipNet"), canonical_model("linear-2048"), canonical_model("relunet")
    ('DIP', 'DIP Linear-2048', 'ReLUNet')
    """
    if not isinstance(name, str):
        raise ValueError(f"model must be a name, got {name!r}")
    key = name.strip().lower().replace("_", "-").replace(" ", "")
    simple = {"decoder": "decoder", "convnet": "convnet", "dip": "DIP", "skipnet": "DIP",
              "skip": "DIP", "relunet": "ReLUNet"}
    if key in simple:
        return simple[key]
    width = key.removeprefix("dip").removeprefix("-").removeprefix("linear").removeprefix("-")
    if key.startswith(("diplinear", "linear")) and width.isdigit() and int(width) >= 1:
        return f"DIP Linear-{int(width)}"
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} "
                     "(N: the hidden width, e.g. 'DIP Linear-128')")


def _whole(low: int, high: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"needs a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {f'>= {low}' if high is None else f'in {low}..{high}'}, "
                             f"got {value}")
        return int(value)
    return parse


def _real(low: float, high: float = math.inf, *, open_low: bool = False):
    def parse(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"needs a number, got {value!r}")
        value = float(value)
        if not (math.isfinite(value) and (value > low if open_low else value >= low)
                and value <= high):
            bound = f"> {low:g}" if open_low else f">= {low:g}"
            raise ValueError(f"must be a finite number {bound}"
                             + (f" and <= {high:g}" if high < math.inf else "") + f", got {value}")
        return value
    return parse


def _choice(options) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(map(str, options))}, got {value!r}")
        return str(value)
    return parse


def _task(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a task name, got {value!r}")
    return make_task(value).name if value not in TASKS else value


def _image(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be an image name, got {value!r}")
    return value.strip()


def _size(value: object) -> int | list[int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"must be one side or [H, W], got {list(value)}")
        return [_whole(8)(v) for v in value]
    return _whole(8)(value)


def _lambda(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none")):
        return None
    return _real(0, open_low=True)(value)


def _sigma(value: object) -> float | list[float]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("needs at least one σ")
        return [_real(0)(v) for v in value]
    return _real(0)(value)


def _stop(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "off")):
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a rule name, got {value!r}")
    key = value.strip().lower().replace("_", "-")
    if key not in _STOP_NAMES:
        raise ValueError(f"must be one of {', '.join(_STOP_NAMES)} or none, got {value!r}")
    return key


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


_PARSERS: dict[str, Callable[[object], object]] = {
    "task": _task, "image": _image, "image_size": _size, "downsample": _whole(1),
    "model": canonical_model, "channels": _whole(1, 4096), "lipschitz_lambda": _lambda,
    "gaussian_sigma": _sigma, "upsample": _choice(UPSAMPLE_MODES),
    "preset": _choice(("auto", *PRESETS)), "precision": _choice(("fp32", "bf16")),
    "dtype": _choice(("float32", "float64")), "seed": _whole(0, 2**63 - 1),
    "iterations": _whole(1), "lr": _real(0, open_low=True), "stop_rule": _stop,
    "log_every": _whole(1), "metrics_every": _whole(0), "backtracking": _bool,
    "noise_sigma": _real(0, 255), "quality": _whole(1, 95), "factor": _whole(2),
    "keep": _real(0, 1, open_low=True),
}


#: Other names people write for a key, for the "did you mean" of an unknown key.
_ALIASES = {"lambda": "lipschitz_lambda", "lam": "lipschitz_lambda", "sigma": "gaussian_sigma",
            "size": "image_size", "steps": "iterations", "width": "channels",
            "upsampling": "upsample", "stop": "stop_rule", "learning_rate": "lr",
            "architecture": "model", "noise": "noise_sigma", "seeds": "seed"}


def unknown_key(key: str) -> str:
    """The message for a key no configuration takes, with the nearest known one.

    Examples
    --------
    >>> unknown_key("lamda")
    "unknown key 'lamda' (did you mean 'lipschitz_lambda'?)"
    """
    names = {**{k: k for k in KEYS}, **_ALIASES}
    near = difflib.get_close_matches(str(key).lower(), list(names), n=1)
    hint = (f" (did you mean {names[near[0]]!r}?)" if near
            else f"; the keys are {', '.join(KEYS)}")
    return f"unknown key {key!r}{hint}"


def parse(config: Mapping[str, object]) -> dict[str, object]:
    """Check each key of one configuration on its own; raise ``ValueError`` naming the key."""
    parsed = {}
    for key, value in config.items():
        if key not in _PARSERS:
            raise ValueError(unknown_key(key))
        try:
            parsed[key] = _PARSERS[key](value)
        except ValueError as err:
            raise ValueError(f"{key} {err}") from None
    return parsed


def resolve(config: Mapping[str, object], device_type: str = "cpu") -> dict[str, object]:
    """The full configuration of one fit: checked, every default filled in.

    Parameters
    ----------
    config : mapping
        Keys of :data:`KEYS`; ``image`` is required.
    device_type : {"cpu", "cuda"}
        Where the sweep runs; resolves ``preset = "auto"`` (paper on a GPU, quick otherwise).

    Returns
    -------
    dict
        Every key of :data:`KEYS`, ``None`` where it does not apply (``quality`` of a denoising
        fit, ``channels`` of ReLUNet; ``lipschitz_lambda`` ``None`` is plain DIP).

    Raises
    ------
    ValueError
        For an unknown key, a bad value or a combination that cannot run (one line).

    Examples
    --------
    >>> full = resolve({"image": "camera", "preset": "quick", "lipschitz_lambda": "off"})
    >>> full["channels"], full["lipschitz_lambda"], full["iterations"], full["noise_sigma"]
    (32, None, 3000, 25.0)
    """
    given = parse(config)
    if "image" not in given:
        raise ValueError("no image; every configuration needs one (image = 'astronaut')")
    full: dict[str, object] = dict.fromkeys(KEYS)
    full.update(task="denoise", model="decoder", preset="auto", dtype="float32", seed=0,
                log_every=1, metrics_every=1, stop_rule=None)
    full.update(given)
    preset = resolve_preset(full["preset"], device_type)
    full["preset"] = preset.name
    _check_combinations(given, full)
    task_class = TASKS[full["task"]]
    model = full["model"]
    if "downsample" not in given and "image_size" not in given:
        full["image_size"] = preset.image_size
    if model in _WIDTH and full["channels"] is None:
        full["channels"] = preset.channels
    if model in _CONTROLLED and "lipschitz_lambda" not in given:
        full["lipschitz_lambda"] = default_lambda(full["task"], preset)
    if model == "decoder":
        if full["upsample"] is None:
            full["upsample"] = "gaussian" if "gaussian_sigma" in given else "bilinear"
        if full["upsample"] == "gaussian" and full["gaussian_sigma"] is None:
            full["gaussian_sigma"] = [0.1, 0.1, 0.1, 0.5, 0.5]
    full["precision"] = full["precision"] or preset.precision
    if full["iterations"] is None:
        full["iterations"] = min(task_class.default_iterations, preset.iterations)
    if full["lr"] is None:
        full["lr"] = LEARNING_RATES.get(model, 1e-3)
    if full["backtracking"] is None:
        full["backtracking"] = bool(task_class.backtracking)
    if full["task"] in TASK_KEYS:
        name, default = TASK_KEYS[full["task"]]
        full[name] = default if full[name] is None else full[name]
    return full


def resolve_preset(name: object, device_type: str):
    """The preset a configuration runs at (``"auto"``: paper on a GPU, quick otherwise)."""
    if name == "auto":
        return preset_named("paper" if device_type == "cuda" else "quick")
    return preset_named(str(name))


def _check_combinations(given: Mapping[str, object], full: Mapping[str, object]) -> None:
    """Refuse what cannot run together, before any fit (the message names both keys)."""
    model, task = full["model"], full["task"]
    if "image_size" in given and "downsample" in given:
        raise ValueError("image_size and downsample both given; keep one")
    if model not in _CONTROLLED and "lipschitz_lambda" in given:
        raise ValueError(f"lipschitz_lambda applies to the decoder and convnet, not {model}")
    if model not in _WIDTH and "channels" in given:
        raise ValueError(f"channels does not apply to {model} (its width is in its name or fixed)")
    if model != "decoder":
        for key in ("upsample", "gaussian_sigma"):
            if key in given:
                raise ValueError(f"{key} applies to the decoder only, not {model}")
    if "gaussian_sigma" in given and given.get("upsample", "gaussian") != "gaussian":
        raise ValueError(f"gaussian_sigma needs upsample = 'gaussian', got upsample = "
                         f"{given['upsample']!r}")
    for other, (key, _) in TASK_KEYS.items():
        if key in given and task != other:
            raise ValueError(f"{key} applies to task {other}, not {task}")
    if full["precision"] == "bf16" and full["dtype"] == "float64":
        raise ValueError("precision bf16 runs beside float32 weights; use dtype float32")
    rule = full["stop_rule"]
    needs = _needs_meters(rule, task)
    if "ratio" in needs and not full["metrics_every"]:
        raise ValueError(f"stop_rule {rule} reads the blur/sharpness ratio, but metrics_every "
                         "is 0; set metrics_every >= 1")


def _needs_meters(rule: str | None, task: str) -> tuple[str, ...]:
    if rule is None:
        return ()
    if rule == "auto":
        rule = RECOMMENDED.get(task, "paper")
    return tuple(make_stop_rule(rule).needs_meters)


def needs_ratio(full: Mapping[str, object]) -> bool:
    """Whether the fit's stop rule reads the blur/sharpness ratio (needs ≥ 35 × 35 pixels)."""
    return "ratio" in _needs_meters(full["stop_rule"], full["task"])
