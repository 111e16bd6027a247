"""A sweep spec: read it (TOML, or YAML when PyYAML is installed), expand its grids and lists
into configurations, check every one and load its image — all before the first fit.

A spec has up to four parts::

    [sweep]          # options: name, max_batch (fits batched together, default 8)
    [defaults]       # keys every configuration starts from
    [grid]           # the product of these values (a list per key); [[grid]] for several
    [[configs]]      # single configurations, each over the defaults

A configuration's keys are :data:`~dipspec.experiments.sweep.keys.KEYS`. In a grid a list is
a list of values, so a per-stage σ or an ``[H, W]`` size is written inside one more list
(``gaussian_sigma = [[0.1, 0.1, 0.1, 0.5, 0.5], 0.5]``). Every problem is one line naming its
entry (``configs[2]``, or the grid values of a grid's configuration).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import torch

from ...measure import ratio_defined
from ..setup import load
from .keys import KEYS, SpecError, canonical_model, needs_ratio, resolve, unknown_key

__all__ = ["DEFAULT_MAX_BATCH", "Fit", "Sweep", "image_key", "load_spec", "read_spec", "select",
           "shipped_spec"]

#: Fits of one architecture and size run together (``fit_many``), at most this many.
DEFAULT_MAX_BATCH = 8
_SECTIONS = ("sweep", "defaults", "grid", "configs")
_OPTIONS = {"name": str, "max_batch": int, "description": str}


@dataclass(frozen=True)
class Fit:
    """One fit of a sweep: its full configuration and where the spec asked for it."""

    config: dict
    entry: str
    fit_id: str
    image_digest: str
    shape: tuple[int, int, int]

    @property
    def key(self) -> dict:
        """The fit's identity in the journal: the full configuration and the image's digest
        (a stand-in for an unreachable paper image is another image, hence another fit)."""
        return {**self.config, "image_digest": self.image_digest}


@dataclass
class Sweep:
    """A checked spec: its fits (duplicates dropped) in the spec's order, and the images."""

    path: Path
    name: str
    text: str
    max_batch: int
    fits: list[Fit]
    images: dict[str, torch.Tensor] = field(repr=False)
    duplicates: int = 0
    #: The spec as run when ``load_spec(..., edit=)`` changed it (``None``: as written).
    edited: dict | None = None


def shipped_spec(name: str) -> Path | None:
    """The spec shipped with the kit under this name (``"architectures"``), or ``None``."""
    candidate = resources.files("dipspec.experiments.sweep") / "specs" / f"{name}.toml"
    return Path(str(candidate)) if candidate.is_file() else None


def read_spec(path: str | Path) -> tuple[Path, dict, str]:
    """``(path, parsed spec, text)`` of a TOML or YAML file, or of a shipped spec's name."""
    path = Path(path)
    if not path.exists() and not path.suffix and shipped_spec(str(path)) is not None:
        path = shipped_spec(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r}: no such spec file (a .toml or .yaml file, or "
                                "the name of a shipped spec: architectures)")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise SpecError(f"{path}: a YAML spec needs PyYAML, which is not installed; "
                            "pip install pyyaml, or write the spec in TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    elif path.suffix.lower() == ".toml":
        toml = _toml()
        try:
            data = toml.loads(text)
        except toml.TOMLDecodeError as err:
            raise SpecError(f"{path}: not valid TOML ({err})") from None
    else:
        raise SpecError(f"{path}: a spec is a .toml or .yaml file, got {path.suffix or 'none'}")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a table of sections ({', '.join(_SECTIONS)})")
    return path, data, text


def _toml():
    """The standard library's TOML reader (Python 3.11+), or its backport ``tomli``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli dependency (pyproject.toml)
        import tomli as tomllib
    return tomllib


def _options(path: Path, data: dict) -> tuple[str, int]:
    options = data.get("sweep", {})
    if not isinstance(options, dict):
        raise SpecError(f"{path}: [sweep] must be a table of options")
    for key, value in options.items():
        if key not in _OPTIONS:
            raise SpecError(f"{path}: [sweep] unknown option {key!r}; the options are "
                            f"{', '.join(_OPTIONS)}")
        if not isinstance(value, _OPTIONS[key]) or isinstance(value, bool):
            raise SpecError(f"{path}: [sweep] {key} must be a {_OPTIONS[key].__name__}, got "
                            f"{value!r}")
    max_batch = options.get("max_batch", DEFAULT_MAX_BATCH)
    if max_batch < 1:
        raise SpecError(f"{path}: [sweep] max_batch must be >= 1, got {max_batch}")
    return str(options.get("name", path.stem)), max_batch


def _entries(path: Path, data: dict) -> list[tuple[str, dict]]:
    """Every configuration the spec asks for, over the defaults, each with its entry's name."""
    for key in data:
        if key not in _SECTIONS:
            raise SpecError(f"{path}: unknown section [{key}]; the sections are "
                            f"{', '.join(_SECTIONS)}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SpecError(f"{path}: [defaults] must be a table of keys")
    grids = data.get("grid", [])
    grids = [grids] if isinstance(grids, dict) else grids
    configs = data.get("configs", [])
    if not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids):
        raise SpecError(f"{path}: [grid] must be a table (or [[grid]] tables) of value lists")
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise SpecError(f"{path}: configs must be a list of tables ([[configs]])")
    if not grids and not configs:
        raise SpecError(f"{path}: no configurations; add a [grid] or [[configs]] entries")
    entries = []
    for g, grid in enumerate(grids):
        label = f"grid {g + 1}" if len(grids) > 1 else "grid"
        if not grid:
            raise SpecError(f"{path}: {label} is empty")
        axes = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        for key, values in axes.items():
            if not values:
                raise SpecError(f"{path}: {label}: {key} has no values")
        for combo in itertools.product(*axes.values()):
            values = dict(zip(axes, combo))
            shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
            entries.append((f"{label} ({shown})", {**defaults, **values}))
    for c, config in enumerate(configs):
        entries.append((f"configs[{c}]", {**defaults, **config}))
    return entries


def load_spec(path: str | Path, device_type: str = "cpu",
              edit: Callable[[dict], dict] | None = None) -> Sweep:
    """Read, expand and check a spec, and load every image it names.

    Parameters
    ----------
    path : path or str
        A ``.toml`` or ``.yaml`` file, or the name of a spec shipped with the kit
        (``"architectures"``).
    device_type : {"cpu", "cuda"}
        Where the fits will run; resolves ``preset = "auto"``.
    edit : callable, optional
        Given a copy of the parsed spec (its sections as dicts), returns the spec to run — how
        ``dipspec table architectures`` applies its options to the shipped spec. The edited
        spec is checked like a written one and kept in :attr:`Sweep.edited` (provenance).

    Raises
    ------
    SpecError
        (a ``ValueError``) For an unknown section, option or key, a bad value, a combination
        that cannot run or an image that cannot be had — one line naming the entry.
    FileNotFoundError
        If the spec file does not exist.

    Examples
    --------
    >>> import tempfile
    >>> spec = Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = spec.write_text('[defaults]\\npreset = "quick"\\nimage_size = 16\\n'
    ...                     '[grid]\\nimage = "camera"\\nseed = [0, 1]\\n')
    >>> [fit.config["seed"] for fit in load_spec(spec).fits]
    [0, 1]
    """
    path, data, text = read_spec(path)
    edited = None
    if edit is not None:
        data = edited = edit(copy.deepcopy(data))
    name, max_batch = _options(path, data)
    images: dict[str, torch.Tensor] = {}
    fits, seen = [], set()
    entries = _entries(path, data)
    for entry, raw in entries:
        try:
            config = resolve(raw, device_type)
        except ValueError as err:
            raise SpecError(f"{path}: {entry}: {err}") from None
        try:
            image = _image(config, images)
        except (ValueError, FileNotFoundError, OSError) as err:
            message = " ".join(str(err).split())
            raise SpecError(f"{path}: {entry}: image {config['image']!r}: {message}") from None
        _check_size(path, entry, config, image)
        fit = _fit(config, entry, image)
        if fit.fit_id not in seen:
            seen.add(fit.fit_id)
            fits.append(fit)
    return Sweep(path, name, text, max_batch, fits, images, len(entries) - len(fits), edited)


def select(sweep: Sweep, only: Mapping[str, Sequence[str]]) -> Sweep:
    """The fits of ``sweep`` whose every key in ``only`` takes one of the listed values
    (``{"image": ["House"], "seed": ["0"]}``; numbers compare as numbers, models by name).

    Raises
    ------
    SpecError
        For an unknown key, or a selection that matches no fit.
    """
    for key in only:
        if key not in KEYS:
            raise SpecError(f"--only: {unknown_key(key)}")
    fits = [fit for fit in sweep.fits
            if all(any(_matches(key, fit.config[key], v) for v in values)
                   for key, values in only.items())]
    if not fits:
        shown = " ".join(f"{k}={','.join(v)}" for k, v in only.items())
        raise SpecError(f"--only {shown} matches none of the {len(sweep.fits)} fits of "
                        f"{sweep.path}")
    return replace(sweep, fits=fits)


def _matches(key: str, value: object, wanted: str) -> bool:
    if str(value) == wanted or (value is None and wanted.lower() in ("none", "off")):
        return True
    if key == "model":
        try:
            return canonical_model(wanted) == value
        except ValueError:
            return False
    try:
        return not isinstance(value, bool) and float(wanted) == float(value)
    except (TypeError, ValueError):
        return False


def _image_key(config: Mapping) -> str:
    return json.dumps([config["image"], config["image_size"], config["downsample"],
                       config["preset"] == "quick"])


def _image(config: Mapping, images: dict[str, torch.Tensor]) -> torch.Tensor:
    """The clean image of a configuration, loaded once per sweep (stand-ins: quick only)."""
    key = _image_key(config)
    if key not in images:
        preset = config["preset"]
        size = config["image_size"]
        if config["downsample"]:
            height, width = load(config["image"], preset=preset).shape[-2:]
            size = (height // config["downsample"], width // config["downsample"])
        images[key] = load(config["image"], tuple(size) if isinstance(size, list) else size,
                           preset=preset)
    return images[key]


def _check_size(path: Path, entry: str, config: Mapping, image: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    if needs_ratio(config) and not ratio_defined(height, width):
        raise SpecError(f"{path}: {entry}: stop_rule {config['stop_rule']} needs the "
                        f"blur/sharpness ratio, defined from 35x35 pixels, but the image is "
                        f"{height}x{width}; use a larger image_size or another stop_rule")
    if config["task"] == "super_resolve" and min(height, width) < 2 * config["factor"]:
        raise SpecError(f"{path}: {entry}: a {height}x{width} image is too small for "
                        f"super-resolution x{config['factor']}")


def _fit(config: dict, entry: str, image: torch.Tensor) -> Fit:
    digest = hashlib.sha256(image.contiguous().numpy().tobytes()).hexdigest()[:16]
    key = {**config, "image_digest": digest}
    fit_id = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Fit(config, entry, fit_id, digest, tuple(image.shape[1:]))


def image_key(fit: Fit) -> str:
    """The key of a fit's clean image in :attr:`Sweep.images`."""
    return _image_key(fit.config)

