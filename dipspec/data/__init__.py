"""Images in, ``(1, C, H, W)`` float tensors out: embedded test images, files and the paper's data.

Three sources, all returning float32 tensors in [0, 1]:

- `load_image` reads a file, or one of `EMBEDDED_IMAGES` shipped with scikit-image
  (``skimage.data``): these work offline on a fresh machine (module `images`).
- `paper_image` / `paper_mask` read the paper's evaluation data (SPEC §10). A local mirror
  folder named by the environment variable ``DIPSPEC_DATA_MIRROR`` is used when it holds the
  file; otherwise the file is downloaded once with ``pooch`` from the authors' public repository
  into a cache folder (``<checkout>/dataset/cache``, or the user cache; ``DIPSPEC_DATA_CACHE``
  overrides). Every file is checked against the SHA-256 registry shipped in the package
  (module `paper`).
- `fetch_all` pre-fetches the paper's data (for offline use later).
- `estimate_noise_sigma` estimates the white-noise level of an image (module `noise`).

Nothing is read or downloaded at import.

Examples
--------
>>> x = load_image("camera", size=64)
>>> x.shape, x.dtype
(torch.Size([1, 1, 64, 64]), torch.float32)
"""

from .images import EMBEDDED_IMAGES, GREY_WEIGHTS, load_image, save_image
from .images import _array_to_tensor as _array_to_tensor
from .noise import estimate_noise_sigma
from .paper import BASE_URL, fetch_all, paper_image, paper_images, paper_mask, paper_registry

__all__ = [
    "BASE_URL",
    "EMBEDDED_IMAGES",
    "estimate_noise_sigma",
    "GREY_WEIGHTS",
    "fetch_all",
    "load_image",
    "paper_image",
    "paper_images",
    "paper_mask",
    "paper_registry",
    "save_image",
]
