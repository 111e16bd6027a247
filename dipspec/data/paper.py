"""The paper's evaluation data (SPEC §10): images and masks, checksum-verified.

A local mirror folder named by the environment variable ``DIPSPEC_DATA_MIRROR`` is used when it
holds the file; otherwise the file is downloaded once with ``pooch`` from the authors' public
repository into a cache folder (``<checkout>/dataset/cache``, or the user cache;
``DIPSPEC_DATA_CACHE`` overrides). ``DIPSPEC_OFFLINE=1`` forbids downloads: a file that is in
neither the mirror nor the cache then raises ``FileNotFoundError`` at once. An empty
``DIPSPEC_DATA_MIRROR`` means no mirror. Every file is checked against the SHA-256 registry
shipped beside this module (``paper_data_sha256.txt``). Nothing is read or downloaded at import.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .images import load_image

__all__ = ["BASE_URL", "fetch_all", "paper_image", "paper_images", "paper_mask", "paper_registry"]

#: Public address of the authors' ``dataset/`` folder at the pinned commit.
BASE_URL = (
    "https://raw.githubusercontent.com/shizenglin/Measure-and-Control-Spectral-Bias/"
    "ed2d37185dc94a7cd78656d19fed28b29ba0b1b8/dataset/"
)

MIRROR_ENV = "DIPSPEC_DATA_MIRROR"
CACHE_ENV = "DIPSPEC_DATA_CACHE"
OFFLINE_ENV = "DIPSPEC_OFFLINE"  # "1": never download (tests, air-gapped machines)
_REGISTRY_FILE = Path(__file__).with_name("paper_data_sha256.txt")
_IMAGE_SUFFIXES = (".png", ".bmp")

_TASK_FOLDERS = {
    "denoising": "denoising/",
    "denoise": "denoising/",
    "deblocking": "deblocking/",
    "deblock": "deblocking/",
    "classic5": "deblocking/classic5/",
    "live1": "deblocking/LIVE1/",
    "inpainting": "inpainting/",
    "inpaint": "inpainting/",
    "bernoulli": "inpainting/Dataset_Bernoulli/",
    "enhancement": "enhancement/",
    "enhance": "enhancement/",
}


@lru_cache(maxsize=1)
def _registry() -> dict[str, str]:
    registry = {}
    for line in _REGISTRY_FILE.read_text().splitlines():
        if line.strip():
            digest, relpath = line.split(maxsplit=1)
            registry[relpath.strip().lstrip("*")] = digest.lower()
    return registry


def paper_registry() -> dict[str, str]:
    """The paper's files and their SHA-256 digests, ``{relpath: hexdigest}``.

    Examples
    --------
    >>> len(paper_registry()), "enhancement/tulips.bmp" in paper_registry()
    (70, True)
    """
    return dict(_registry())


def _check_relpath(relpath: str) -> str:
    relpath = str(relpath).replace("\\", "/").lstrip("/")
    if relpath.startswith("dataset/"):
        relpath = relpath[len("dataset/") :]
    registry = _registry()
    if relpath not in registry:
        close = difflib.get_close_matches(relpath, list(registry), n=3, cutoff=0.5)
        examples = close or [
            "denoising/image_Peppers512rgb.png",
            "deblocking/classic5/barbara.bmp",
            "inpainting/Dataset_Bernoulli/img/barbara.png",
        ]
        raise ValueError(
            f"{relpath!r} is not one of the paper's files; valid paths look like "
            f"{', '.join(repr(e) for e in examples)} (list them with dipspec.data.paper_images())"
        )
    return relpath


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]  # dipspec/data/paper.py -> checkout
    if (root / "pyproject.toml").is_file() and (root / "dataset").is_dir():
        return root
    return None


def _cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    root = _repo_root()
    if root is not None:
        return root / "dataset" / "cache"
    import pooch

    return Path(pooch.os_cache("dipspec"))


def _local_path(relpath: str) -> Path:
    """A verified local copy of a paper file: the mirror's, else pooch's cache (downloading)."""
    relpath = _check_relpath(relpath)
    expected = _registry()[relpath]
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        candidate = Path(mirror).expanduser() / relpath
        if candidate.is_file():
            actual = _sha256(candidate)
            if actual != expected:
                raise ValueError(
                    f"checksum mismatch for {str(candidate)!r}: SHA-256 {actual}, expected "
                    f"{expected}; the mirror's copy is corrupt or modified: copy it again from "
                    f"the paper's data, or unset {MIRROR_ENV} to download a verified copy"
                )
            return candidate
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):  # no network: the cache or nothing
        cached = _cache_dir() / relpath
        if cached.is_file() and _sha256(cached) == expected:
            return cached
        raise FileNotFoundError(
            f"{relpath!r} is not in the mirror or the cache, and {OFFLINE_ENV} forbids "
            f"downloads; set {MIRROR_ENV} to a local copy of the authors' dataset/ folder "
            f"(see dataset/README.md), or unset {OFFLINE_ENV} to download it"
        )
    import pooch

    fetcher = pooch.create(
        path=_cache_dir(),
        base_url=BASE_URL,
        registry={name: f"sha256:{digest}" for name, digest in _registry().items()},
    )
    try:
        return Path(fetcher.fetch(relpath))
    except OSError as err:  # requests' connection errors are OSErrors
        raise FileNotFoundError(
            f"could not download {relpath!r} from {BASE_URL} ({type(err).__name__}); set "
            f"{MIRROR_ENV} to a local copy of the authors' dataset/ folder "
            f"(see dataset/README.md), or retry with network access"
        ) from err


def paper_image(
    relpath: str, gray: bool = False, size: int | Sequence[int] | None = None
) -> Tensor:
    """One of the paper's evaluation images as a ``(1, C, H, W)`` float32 tensor in [0, 1].

    Parameters
    ----------
    relpath : str
        Path inside the authors' ``dataset/`` folder, e.g. ``"denoising/image_Peppers512rgb.png"``
        or ``"inpainting/Dataset_Bernoulli/img/barbara.png"`` (see `paper_images`).
    gray, size
        As in `load_image`.

    Returns
    -------
    Tensor, shape (1, C, H, W), float32

    Raises
    ------
    ValueError
        For an unknown ``relpath``, or a file whose SHA-256 does not match the registry.

    Notes
    -----
    Source order: ``$DIPSPEC_DATA_MIRROR/<relpath>`` if that file exists (checked against the
    registry); else a checksum-verified download with pooch from `BASE_URL` into the cache
    folder (``$DIPSPEC_DATA_CACHE``, else ``<checkout>/dataset/cache``, else the user cache),
    unless ``$DIPSPEC_OFFLINE`` is ``1`` (then only an already cached copy is used). SPEC §10.
    """
    return load_image(_local_path(relpath), gray=gray, size=size)


def _mask_relpath(relpath: str) -> str:
    relpath = str(relpath).replace("\\", "/").lstrip("/")
    if "/Dataset_Bernoulli/img/" in relpath:  # an image path: use its own mask
        relpath = relpath.replace("/img/", "/mask/").rsplit(".", 1)[0] + ".h5"
    elif relpath.endswith(".png") and not relpath.endswith("_mask.png"):
        candidate = relpath[: -len(".png")] + "_mask.png"
        if candidate in _registry():
            relpath = candidate
    return relpath


def paper_mask(relpath: str) -> Tensor:
    """One of the paper's inpainting masks as a ``(1, 1, H, W)`` 0/1 float32 tensor (1 = kept).

    Parameters
    ----------
    relpath : str
        A Bernoulli mask (``"inpainting/Dataset_Bernoulli/mask/barbara.h5"``: HDF5, key
        ``'mask'``, shape (1, H, W), int64) or a region mask (``"inpainting/vase_mask.png"``,
        white = kept). The path of the matching image (``".../img/barbara.png"``,
        ``"inpainting/vase.png"``) is accepted too.

    Returns
    -------
    Tensor, shape (1, 1, H, W), float32

    Raises
    ------
    ValueError
        For a path that is not one of the paper's masks, or a checksum mismatch.
    """
    relpath = _check_relpath(_mask_relpath(relpath))
    path = _local_path(relpath)
    if relpath.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as handle:
            array = np.asarray(handle["mask"][()])
        array = array.reshape(array.shape[-2:])
        return torch.from_numpy((array > 0).astype(np.float32))[None, None]
    if relpath.endswith("_mask.png"):
        grey = load_image(path, gray=True)
        return (grey > 0.5).to(torch.float32)
    raise ValueError(
        f"{relpath!r} is not a mask; pass a path under inpainting/Dataset_Bernoulli/mask/ "
        "or inpainting/*_mask.png"
    )


def _is_image(relpath: str) -> bool:
    return (
        relpath.endswith(_IMAGE_SUFFIXES)
        and "/mask/" not in relpath
        and not relpath.endswith("_mask.png")
    )


def _prefix(task: str | None) -> str:
    if task is None:
        return ""
    key = str(task).strip().lower().rstrip("/")
    if key in _TASK_FOLDERS:
        return _TASK_FOLDERS[key]
    folders = {
        "/".join(parts[:k])
        for parts in (relpath.split("/") for relpath in _registry())
        for k in range(1, len(parts))
    }
    for folder in folders:
        if folder.lower() == key:
            return folder + "/"
    raise ValueError(
        f"unknown task or folder {task!r}; choose one of 'denoising', 'deblocking', "
        "'inpainting', 'enhancement' (or a sub-folder such as 'deblocking/classic5'). "
        "The paper publishes no super-resolution images: use load_image or the denoising images"
    )


def paper_images(task: str | None = None) -> list[str]:
    """The paper's image paths (relative to its ``dataset/`` folder) for a task.

    Parameters
    ----------
    task : str, optional
        ``'denoising'`` (the 9 colour images), ``'deblocking'`` (classic5 + LIVE1, or
        ``'classic5'`` / ``'LIVE1'``), ``'inpainting'`` (11 Bernoulli images + 2 region
        examples; ``'bernoulli'`` for the 11), ``'enhancement'`` (tulips), the task names
        ``'denoise'``, ``'deblock'``, ``'inpaint'``, ``'enhance'``, or any sub-folder.
        ``None`` lists every image.

    Returns
    -------
    list of str
        Sorted relative paths, usable with `paper_image`. Masks are not listed (see
        `paper_mask`).

    Examples
    --------
    >>> len(paper_images("denoising")), len(paper_images("classic5"))
    (9, 5)
    >>> len(paper_images("bernoulli")), paper_images("enhancement")
    (11, ['enhancement/tulips.bmp'])
    """
    prefix = _prefix(task)
    return sorted(p for p in _registry() if p.startswith(prefix) and _is_image(p))


def fetch_all(task: str | None = None) -> list[Path]:
    """Make a verified local copy of the paper's files (images and masks) for offline use.

    Parameters
    ----------
    task : str, optional
        Restrict to one task or folder (as in `paper_images`); ``None`` fetches all 70 files.

    Returns
    -------
    list of Path
        The local paths (mirror files when ``DIPSPEC_DATA_MIRROR`` holds them, else the cache).
    """
    prefix = _prefix(task)
    return [_local_path(p) for p in sorted(_registry()) if p.startswith(prefix)]
