"""Any image in, a ``(1, C, H, W)`` float32 tensor in [0, 1] out (and back to a file).

`load_image` reads a file, or one of `EMBEDDED_IMAGES` shipped with scikit-image
(``skimage.data``): these work offline on a fresh machine. `save_image` writes 8-bit files.
H×W×C arrays are converted to tensors only here (and in the plots).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

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
