"""Images in, ``(1, C, H, W)`` float tensors out: embedded test images, files and the paper's data.

Three sources, all returning float32 tensors in [0, 1]:

- `load_image` reads a file, or one of `EMBEDDED_IMAGES` shipped with scikit-image
  (``skimage.data``): these work offline on a fresh machine.
- `paper_image` / `paper_mask` read the paper's evaluation data (SPEC §10). A local mirror
  folder named by the environment variable ``DIPSPEC_DATA_MIRROR`` is used when it holds the
  file; otherwise the file is downloaded once with ``pooch`` from the authors' public repository
  into a cache folder (``<checkout>/dataset/cache``, or the user cache; ``DIPSPEC_DATA_CACHE``
  overrides). Every file is checked against the SHA-256 registry shipped in the package.
- `fetch_all` pre-fetches the paper's data (for offline use later).

Nothing is read or downloaded at import.

Examples
--------
>>> x = load_image("camera", size=64)
>>> x.shape, x.dtype
(torch.Size([1, 1, 64, 64]), torch.float32)
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

__all__ = [
    "BASE_URL",
    "EMBEDDED_IMAGES",
    "GREY_WEIGHTS",
    "fetch_all",
    "load_image",
    "paper_image",
    "paper_images",
    "paper_mask",
    "paper_registry",
    "save_image",
]

#: Public address of the authors' ``dataset/`` folder at the pinned commit.
BASE_URL = (
    "https://raw.githubusercontent.com/shizenglin/Measure-and-Control-Spectral-Bias/"
    "ed2d37185dc94a7cd78656d19fed28b29ba0b1b8/dataset/"
)

#: Grey conversion weights (R, G, B), SPEC §5.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)

#: ``skimage.data`` images shipped inside scikit-image (no download needed).
EMBEDDED_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

MIRROR_ENV = "DIPSPEC_DATA_MIRROR"
CACHE_ENV = "DIPSPEC_DATA_CACHE"
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


# --------------------------------------------------------------------------------------------
# arrays -> tensors
# --------------------------------------------------------------------------------------------


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    """Integer, bool or float image array -> float64 in [0, 1]."""
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float64) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        # 32-bit integer images (Pillow mode "I") hold 16-bit data in practice.
        scale = 65535.0 if array.max(initial=0) > 255 else 255.0
        return np.clip(array.astype(np.float64) / scale, 0.0, 1.0)
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def _to_grey(array: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) with the SPEC §5 weights, clipped to [0, 1]."""
    weights = np.asarray(GREY_WEIGHTS, dtype=np.float64)
    return np.clip(array[..., :3] @ weights, 0.0, 1.0)


def _resize(array: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    from skimage.transform import resize

    h, w = array.shape[:2]
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        side = int(size)
        if side < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        # Shorter side to `side` (aspect kept), then a centre crop to side x side.
        scale = side / min(h, w)
        target = (max(side, round(h * scale)), max(side, round(w * scale)))
        array = resize(array, target + array.shape[2:], order=3, anti_aliasing=True)
        top, left = (target[0] - side) // 2, (target[1] - side) // 2
        array = array[top : top + side, left : left + side]
    else:
        try:
            new_h, new_w = (int(s) for s in size)
        except (TypeError, ValueError):
            raise ValueError(
                f"size must be an int (square) or a pair (H, W), got {size!r}"
            ) from None
        if new_h < 1 or new_w < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        array = resize(array, (new_h, new_w) + array.shape[2:], order=3, anti_aliasing=True)
    return np.clip(array, 0.0, 1.0)


def _array_to_tensor(array: np.ndarray, gray: bool, size: int | Sequence[int] | None) -> Tensor:
    """H×W or H×W×C array of any image dtype -> (1, C, H, W) float32 in [0, 1]."""
    array = _to_unit_float(np.asarray(array))
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # RGBA -> RGB: alpha dropped
    elif array.ndim == 3 and array.shape[2] == 2:
        array = array[..., 0]  # grey + alpha -> grey
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] != 3 or array.ndim not in (2, 3):
        raise ValueError(
            f"unsupported image array of shape {array.shape}; expected H×W, H×W×3 or H×W×4"
        )
    if gray and array.ndim == 3:
        array = _to_grey(array)
    if size is not None:
        array = _resize(array, size)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor[None].contiguous()


def _read_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
                image = image.convert("RGB")
            elif mode == "LA" or mode == "La" or mode == "PA":
                image = image.convert("L")
            elif mode == "1":
                image = image.convert("L")
            array = np.array(image)
    except UnidentifiedImageError:
        raise ValueError(
            f"{path} is not an image Pillow can read; pass a PNG, BMP, JPEG or TIFF file"
        ) from None
    if mode.startswith("I;16") and array.dtype != np.uint16:
        array = array.astype(np.uint16)
    return array


# --------------------------------------------------------------------------------------------
# public: any image
# --------------------------------------------------------------------------------------------


def load_image(
    name_or_path: str | os.PathLike,
    gray: bool = False,
    size: int | Sequence[int] | None = None,
) -> Tensor:
    """Load an image as a ``(1, C, H, W)`` float32 tensor in [0, 1].

    Parameters
    ----------
    name_or_path : str or path
        One of `EMBEDDED_IMAGES` (``skimage.data`` images: ``'astronaut'``, ``'camera'``, …)
        or the path of an image file readable by Pillow.
    gray : bool, default False
        Convert colour to grey with the SPEC §5 weights (0.2989, 0.5870, 0.1140), clipped.
        Grey images stay grey either way (C = 1); they are never replicated to 3 channels.
    size : int or (int, int), optional
        Resize: an int scales the shorter side to ``size`` (aspect kept) then centre-crops to
        ``size`` × ``size``; a pair (H, W) resizes to exactly that. Resampling is
        ``skimage.transform.resize`` (bicubic, ``order=3``, ``anti_aliasing=True``), clipped
        to [0, 1].

    Returns
    -------
    Tensor, shape (1, C, H, W), float32
        C = 1 for grey images (or ``gray=True``), 3 for colour. Alpha channels are dropped;
        8-bit data are divided by 255 and 16-bit data by 65535.

    Raises
    ------
    FileNotFoundError
        If the path does not exist (for a bare name, the message lists the embedded images).
    ValueError
        If the file is not an image, or ``size`` is invalid.

    Examples
    --------
    >>> load_image("astronaut", size=(32, 48)).shape
    torch.Size([1, 3, 32, 48])
    >>> load_image("astronaut", gray=True, size=32).shape
    torch.Size([1, 1, 32, 32])
    """
    if isinstance(name_or_path, str) and name_or_path in EMBEDDED_IMAGES:
        import skimage.data

        array = getattr(skimage.data, name_or_path)()
        return _array_to_tensor(array, gray, size)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        if path.exists():
            raise FileNotFoundError(f"{str(path)!r} is a folder, not an image file")
        looks_like_name = isinstance(name_or_path, str) and not (
            os.sep in name_or_path or "/" in name_or_path or path.suffix
        )
        if looks_like_name:
            close = difflib.get_close_matches(name_or_path, EMBEDDED_IMAGES, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise FileNotFoundError(
                f"{name_or_path!r} is neither an embedded image nor a file{hint}; "
                f"embedded images: {', '.join(EMBEDDED_IMAGES)}"
            )
        raise FileNotFoundError(
            f"image file {str(path)!r} does not exist; check the path, or use an embedded "
            f"image such as 'astronaut' or 'camera'"
        )
    return _array_to_tensor(_read_file(path), gray, size)


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write a ``(1, C, H, W)`` or ``(C, H, W)`` image in [0, 1] as an 8-bit file.

    Parameters
    ----------
    image : Tensor, shape (1, C, H, W) or (C, H, W), C in (1, 3)
        Values are clipped to [0, 1] and rounded to 8 bits (``round(255 x)``).
    path : str or path
        Destination; the format follows the suffix (``.png`` keeps the 8 bits exactly).
        Missing parent folders are created.

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> x = load_image("camera", size=16)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = load_image(save_image(x, Path(folder) / "camera.png"))
    >>> bool(torch.allclose(back, x, atol=0.5 / 255 + 1e-6))
    True
    """
    from PIL import Image

    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(
                f"save_image writes one image, got a batch of {image.shape[0]} "
                f"{tuple(image.shape)}; save image[i : i + 1] for each i"
            )
        image = image[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(
            f"image must be (1, C, H, W) or (C, H, W) with C in (1, 3), got {tuple(image.shape)}"
        )
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.shape[0] == 1:
        Image.fromarray(array[0], mode="L").save(path)
    else:
        Image.fromarray(array.transpose(1, 2, 0), mode="RGB").save(path)
    return path


# --------------------------------------------------------------------------------------------
# public: the paper's data
# --------------------------------------------------------------------------------------------


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
    root = Path(__file__).resolve().parent.parent
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
    folder (``$DIPSPEC_DATA_CACHE``, else ``<checkout>/dataset/cache``, else the user cache).
    SPEC §10.
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
