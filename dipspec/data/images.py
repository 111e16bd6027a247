"""Any image in, a ``(1, C, H, W)`` float32 tensor in [0, 1] out (and back to a file).

`load_image` reads a file, or one of `EMBEDDED_IMAGES` shipped with scikit-image
(``skimage.data``): these work offline on a fresh machine. `save_image` writes 8-bit files.
H×W×C arrays are converted to tensors only here (and in the plots).
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._checks import RANGE_TOLERANCE

__all__ = ["EMBEDDED_IMAGES", "GREY_WEIGHTS", "load_image", "save_image"]

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


def _to_unit_float(array: np.ndarray, source: str) -> np.ndarray:
    """Integer, bool or float image array -> float64 in [0, 1] (``source`` names it in errors)."""
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
    return _check_float_pixels(array.astype(np.float64), source)


def _check_float_pixels(array: np.ndarray, source: str) -> np.ndarray:
    """Float pixels must be finite and in [0, 1] (rounding within RANGE_TOLERANCE is clipped)."""
    if array.size == 0:
        raise ValueError(f"{source} holds no pixels (shape {array.shape})")
    low, high = float(array.min()), float(array.max())  # NaN propagates
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(
            f"{source} contains {bad} NaN or inf pixel value(s) among {array.size}; every pixel "
            "must be a finite number in [0, 1]: repair the file or export it again"
        )
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        likely, fix = "", "rescale the data to [0, 1] before saving"
        if low >= -RANGE_TOLERANCE and high > 2.0:
            top = "65535" if high > 255.0 + RANGE_TOLERANCE else "255"
            likely, fix = f", which looks like 0-{top} values", f"divide the data by {top}"
        raise ValueError(
            f"{source} holds float pixels in [{low:.4g}, {high:.4g}]{likely}; float images must "
            f"lie in [0, 1]: {fix}, or save it as an 8-bit or 16-bit PNG"
        )
    return np.clip(array, 0.0, 1.0)


def _composite_on_white(array: np.ndarray, source: str) -> np.ndarray:
    """(H, W, 2 | 4) with alpha last -> grey / RGB composited on white (a warning if it matters)."""
    colour, alpha = array[..., :-1], array[..., -1:]
    if bool((alpha < 1.0).any()):
        warnings.warn(
            f"{source} has transparent pixels (an alpha channel); they were composited on a "
            "white background. Save the image without alpha to choose the background yourself",
            stacklevel=4,  # the caller of load_image
        )
        colour = colour * alpha + (1.0 - alpha)
    return colour[..., 0] if colour.shape[2] == 1 else colour


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


def _cap(array: np.ndarray, max_side: int, source: str) -> np.ndarray:
    """Shrink (aspect kept) so the longer side is at most ``max_side``; warn when it does."""
    h, w = array.shape[:2]
    if max(h, w) <= max_side:
        return array
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    warnings.warn(
        f"{source} is {h}x{w} pixels; resized to {size[0]}x{size[1]} (max_side={max_side}). "
        "Pass size=... to choose the size, or max_side=None to keep full resolution",
        stacklevel=4,  # the caller of load_image
    )
    return _resize(array, size)


def _array_to_tensor(
    array: np.ndarray,
    gray: bool,
    size: int | Sequence[int] | None,
    source: str,
    max_side: int | None = None,
) -> Tensor:
    """H×W or H×W×C array of any image dtype -> (1, C, H, W) float32 in [0, 1]."""
    array = _to_unit_float(np.asarray(array), source)
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = _composite_on_white(array, source)  # grey + alpha, RGBA
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] != 3 or array.ndim not in (2, 3):
        raise ValueError(
            f"unsupported image array of shape {array.shape} in {source}; "
            "expected H×W, H×W×3 or H×W×4"
        )
    if gray and array.ndim == 3:
        array = _to_grey(array)
    if size is not None:
        array = _resize(array, size)
    elif max_side is not None:
        array = _cap(array, max_side, source)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor[None].contiguous()


# Pillow modes converted before reading pixels; the rest (L, RGB, RGBA, LA, I, I;16, F) are kept.
_CONVERT = {
    "1": "L",
    "La": "LA",
    "PA": "RGBA",
    "RGBa": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBX": "RGB",
}


def _decode(path: Path) -> tuple[np.ndarray, str]:
    """Pixels of an image file, EXIF orientation applied; Pillow's errors pass through."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)  # a decoded copy, upright
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in _CONVERT:
        image = image.convert(_CONVERT[mode])
    return np.array(image), mode


def _read_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    shown = repr(str(path))
    try:
        array, mode = _decode(path)
    except UnidentifiedImageError:
        raise ValueError(
            f"{path} is not an image Pillow can read (an unknown format, or a damaged or "
            "truncated file); pass a PNG, BMP, JPEG or TIFF file"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(
            f"image file {shown} is too large to load safely ({err}); downscale it first, or "
            "if you trust the file raise PIL.Image.MAX_IMAGE_PIXELS"
        ) from None
    except PermissionError:
        raise PermissionError(
            f"image file {shown} cannot be read: permission denied; check its permissions "
            "(e.g. chmod u+r) or copy it somewhere readable"
        ) from None
    except (FileNotFoundError, MemoryError):
        raise
    except Exception as err:  # truncated or corrupt data fails deep inside Pillow's decoders
        raise ValueError(
            f"image file {shown} could not be decoded ({type(err).__name__}: {err}); it is "
            "probably truncated or corrupt: open and save it again, or export it as PNG"
        ) from err
    if mode.startswith("I;16") and array.dtype != np.uint16:
        array = array.astype(np.uint16)
    return array


def load_image(
    name_or_path: str | os.PathLike,
    gray: bool = False,
    size: int | Sequence[int] | None = None,
    max_side: int | None = None,
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
    max_side : int, optional
        A cap for large photos, used when ``size`` is None: an image whose longer side exceeds
        ``max_side`` is resized (aspect kept, same resampling) so that it equals ``max_side``,
        with a warning giving both sizes. Smaller images are left as they are.

    Returns
    -------
    Tensor, shape (1, C, H, W), float32
        C = 1 for grey images (or ``gray=True``), 3 for colour. 8-bit data are divided by 255
        and 16-bit data by 65535; float data (e.g. a float32 TIFF) must already lie in [0, 1].

    Raises
    ------
    FileNotFoundError
        If the path does not exist (for a bare name, the message lists the embedded images).
    PermissionError
        If the file cannot be read.
    ValueError
        If the file is not an image, is truncated or corrupt, is over Pillow's
        decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), holds NaN / inf pixels or
        float pixels outside [0, 1] (e.g. on a 0-255 scale), or ``size`` / ``max_side`` is
        invalid.

    Notes
    -----
    Files are read with Pillow, upright: an EXIF orientation tag (phone photos) is applied.
    Transparent pixels (RGBA, grey + alpha, palette transparency) are composited on a white
    background, with a warning; a fully opaque alpha channel is dropped silently.

    Examples
    --------
    >>> load_image("astronaut", size=(32, 48)).shape
    torch.Size([1, 3, 32, 48])
    >>> load_image("astronaut", gray=True, size=32).shape
    torch.Size([1, 1, 32, 32])
    """
    if max_side is not None:
        max_side = _check_max_side(max_side)
    if isinstance(name_or_path, str) and name_or_path in EMBEDDED_IMAGES:
        import skimage.data

        array = getattr(skimage.data, name_or_path)()
        return _array_to_tensor(array, gray, size, f"embedded image {name_or_path!r}", max_side)
    path = Path(name_or_path).expanduser()
    if not _is_file(path):
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
    return _array_to_tensor(_read_file(path), gray, size, f"image file {str(path)!r}", max_side)


def _check_max_side(max_side: int) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise ValueError(
            f"max_side must be a positive integer (pixels) or None, got {max_side!r}; "
            "e.g. max_side=512"
        )
    return int(max_side)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except PermissionError:
        raise PermissionError(
            f"cannot reach image file {str(path)!r}: permission denied on a folder of its path; "
            "check the folders' permissions or copy the file somewhere readable"
        ) from None


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write a ``(1, C, H, W)`` or ``(C, H, W)`` image in [0, 1] as an 8-bit file.

    Parameters
    ----------
    image : Tensor, shape (1, C, H, W) or (C, H, W), C in (1, 3)
        Values are clipped to [0, 1] and rounded to 8 bits (``round(255 x)``); NaN or inf
        raises ``ValueError`` and nothing is written.
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
    path = Path(path)
    if not bool(torch.isfinite(image).all()):
        raise ValueError(
            f"image contains NaN or inf values, so {str(path)!r} was not written (it would "
            "come out black); check the fit that produced it, e.g. a too large lr"
        )
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.shape[0] == 1:
        Image.fromarray(array[0], mode="L").save(path)
    else:
        Image.fromarray(array.transpose(1, 2, 0), mode="RGB").save(path)
    return path
