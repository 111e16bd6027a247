"""Tests for dipspec.data: embedded images, files and the paper's data (SPEC §10). No downloads."""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dipspec import data
from dipspec.data import (
    EMBEDDED_IMAGES,
    fetch_all,
    load_image,
    paper_image,
    paper_images,
    paper_mask,
    paper_registry,
    save_image,
)

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "paper-data"


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """Any attempt to download fails the test; the cache is a fresh temporary folder."""
    import pooch

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", refuse)
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIPSPEC_DATA_MIRROR", raising=False)


@pytest.fixture
def mirror(fake_paper_data) -> Path:
    """A small mirror made here (the paper's layout and file names, tiny synthetic content)."""
    rng = np.random.default_rng(0)
    fake_paper_data.add("denoising/image_House256rgb.png",
                        rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    fake_paper_data.add("denoising/image_F16_512rgb.png",
                        rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    fake_paper_data.add("inpainting/Dataset_Bernoulli/img/barbara.png",
                        rng.integers(0, 256, (32, 32), dtype=np.uint8))
    fake_paper_data.add("enhancement/tulips.bmp", _bmp(rng.integers(0, 256, (12, 18, 3),
                                                                    dtype=np.uint8)))
    checkerboard = (np.indices((32, 32)).sum(0) % 2).astype(np.int64)[None]  # half kept
    fake_paper_data.add("inpainting/Dataset_Bernoulli/mask/barbara.h5", _h5(checkerboard))
    region = np.full((20, 20), 255, dtype=np.uint8)
    region[5:9, :] = 0
    fake_paper_data.add("inpainting/vase_mask.png", region)
    return fake_paper_data.root


def _bmp(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="BMP")
    return buffer.getvalue()


def _h5(mask: np.ndarray) -> bytes:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle["mask"] = mask
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# load_image
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channels", "shape"),
    [("camera", 1, (512, 512)), ("astronaut", 3, (512, 512)), ("chelsea", 3, (300, 451))],
)
def test_embedded_images(name, channels, shape):
    x = load_image(name)
    assert x.shape == (1, channels, *shape)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert name in EMBEDDED_IMAGES


def test_embedded_rgba_and_bool():
    assert load_image("logo", size=16).shape == (1, 3, 16, 16)
    horse = load_image("horse")
    assert horse.shape[1] == 1 and set(horse.unique().tolist()) == {0.0, 1.0}


def test_gray_uses_spec_weights():
    rgb = load_image("astronaut")
    grey = load_image("astronaut", gray=True)
    weights = torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)
    expected = (rgb.double() * weights.double()).sum(1, keepdim=True).clamp(0, 1)
    assert grey.shape == (1, 1, 512, 512)
    assert torch.allclose(grey.double(), expected, atol=1e-6)
    assert load_image("camera", gray=True).shape == (1, 1, 512, 512)


def test_size():
    assert load_image("coffee", size=32).shape == (1, 3, 32, 32)
    assert load_image("coffee", size=(40, 60)).shape == (1, 3, 40, 60)
    small = load_image("camera", size=64)
    assert float(small.min()) >= 0 and float(small.max()) <= 1
    # a smooth downscale keeps the mean brightness
    assert abs(float(small.mean()) - float(load_image("camera").mean())) < 0.01
    with pytest.raises(ValueError, match="size"):
        load_image("camera", size=(1, 2, 3))


def test_files(tmp_path):
    rgba = np.zeros((8, 10, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="rgba.png.*composited on a white background"):
        x = load_image(tmp_path / "rgba.png")
    assert x.shape == (1, 3, 8, 10)
    half = 1 - 128 / 255  # red at alpha 128/255 over white
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([1.0, half, half]))

    deep = (np.arange(8 * 10, dtype=np.uint16).reshape(8, 10) * 800).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    y = load_image(str(tmp_path / "deep.png"))
    assert y.shape == (1, 1, 8, 10)
    np.testing.assert_allclose(y[0, 0].numpy(), deep / 65535.0, atol=1e-6)


def test_alpha(tmp_path):
    opaque = np.full((4, 6, 4), 255, dtype=np.uint8)
    opaque[..., :3] = 40
    Image.fromarray(opaque, mode="RGBA").save(tmp_path / "opaque.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fully opaque alpha channel is dropped silently
        x = load_image(tmp_path / "opaque.png")
    assert torch.equal(x, torch.full((1, 3, 4, 6), 40 / 255))

    grey_alpha = np.zeros((4, 6, 2), dtype=np.uint8)  # black, fully transparent
    Image.fromarray(grey_alpha, mode="LA").save(tmp_path / "la.png")
    with pytest.warns(UserWarning, match="transparent"):
        y = load_image(tmp_path / "la.png")
    assert torch.equal(y, torch.ones(1, 1, 4, 6))


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[:8, :8] = 255  # a white block in the top-left corner
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    x = load_image(tmp_path / "phone.jpg")
    assert x.shape == (1, 3, 24, 16)  # upright: portrait
    assert float(x[0, :, :8, -8:].mean()) > 0.9  # the block is now top-right
    assert float(x[0, :, :8, :8].mean()) < 0.1


def test_truncated_and_corrupt_files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    data_bytes = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(ValueError, match="cut.png.*could not be decoded.*truncated"):
        load_image(tmp_path / "cut.png")
    (tmp_path / "head.png").write_bytes(data_bytes[:20])
    with pytest.raises(ValueError, match="head.png.*truncated"):
        load_image(tmp_path / "head.png")


def test_float_tiff(tmp_path):
    good = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    Image.fromarray(good, mode="F").save(tmp_path / "good.tif")
    np.testing.assert_allclose(load_image(tmp_path / "good.tif")[0, 0].numpy(), good)
    holes = good.copy()
    holes[1, 2] = np.nan
    Image.fromarray(holes, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="nan.tif.*1 NaN or inf pixel"):
        load_image(tmp_path / "nan.tif")
    Image.fromarray(good * 255, mode="F").save(tmp_path / "bytes.tif")
    with pytest.raises(ValueError, match="bytes.tif.*looks like 0-255 values.*divide.*255"):
        load_image(tmp_path / "bytes.tif")
    Image.fromarray(good - 0.5, mode="F").save(tmp_path / "signed.tif")
    with pytest.raises(ValueError, match=r"signed.tif.*\[-0.5, 0.5\].*rescale the data to"):
        load_image(tmp_path / "signed.tif")
    Image.fromarray(good + 0.0005, mode="F").save(tmp_path / "rounding.tif")
    assert float(load_image(tmp_path / "rounding.tif").max()) == 1.0  # rounding is clipped


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((40, 50), dtype=np.uint8)).save(tmp_path / "bomb.png")
    for limit in (500, 1500):  # over 2x the limit Pillow raises, between 1x and 2x it warns
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(ValueError, match="bomb.png.*too large.*MAX_IMAGE_PIXELS"):
            load_image(tmp_path / "bomb.png")


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", refuse)  # chmod does not stop root
    with pytest.raises(PermissionError, match="secret.png.*permission denied"):
        load_image(path)


def test_max_side_caps_large_images(tmp_path):
    Image.fromarray(np.zeros((60, 90, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    with pytest.warns(UserWarning, match=r"60x90 pixels; resized to 20x30 \(max_side=30\)"):
        assert load_image(tmp_path / "wide.png", max_side=30).shape == (1, 3, 20, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(tmp_path / "wide.png", max_side=90).shape == (1, 3, 60, 90)
        assert load_image(tmp_path / "wide.png", size=16, max_side=8).shape == (1, 3, 16, 16)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_side must be a positive integer"):
            load_image("camera", max_side=bad)


def test_save_image_round_trip(tmp_path):
    x = load_image("astronaut", size=24)
    path = save_image(x[0], tmp_path / "sub" / "x.png")
    back = load_image(path)
    assert back.shape == x.shape
    assert torch.equal(back, (x * 255).round() / 255)
    with pytest.raises(ValueError, match="one image"):
        save_image(torch.rand(2, 3, 8, 8), tmp_path / "batch.png")
    broken = torch.rand(1, 3, 8, 8)
    broken[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf.*nan.png.*not written"):
        save_image(broken, tmp_path / "nan.png")
    assert not (tmp_path / "nan.png").exists()


def test_errors(tmp_path):
    missing = tmp_path / "nothing.png"
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        load_image(missing)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(not_image)
    with pytest.raises(FileNotFoundError, match="astronaut"):
        load_image("astronot")


# --------------------------------------------------------------------------------------------
# the paper's data
# --------------------------------------------------------------------------------------------


def test_registry_and_listing():
    registry = paper_registry()
    assert len(registry) == 70
    assert all(len(digest) == 64 for digest in registry.values())
    assert len(paper_images("denoising")) == 9
    assert len(paper_images("denoise")) == 9
    assert len(paper_images("deblocking")) == 34
    assert paper_images("LIVE1")[0].startswith("deblocking/LIVE1/")
    assert len(paper_images("inpainting")) == 13
    assert paper_images("enhancement") == ["enhancement/tulips.bmp"]
    assert len(paper_images()) == 57
    with pytest.raises(ValueError, match="denoising"):
        paper_images("super_resolve")


def test_shipped_registry_matches_mirror():
    if not (MIRROR / "SHA256SUMS").is_file():
        pytest.skip(f"paper data mirror not found at {MIRROR}")
    shipped = Path(data.__file__).with_name("paper_data_sha256.txt").read_text()
    assert shipped == (MIRROR / "SHA256SUMS").read_text()


def test_unknown_relpath():
    with pytest.raises(ValueError, match="image_Peppers512rgb.png"):
        paper_image("denoising/image_Pepers512rgb.png")


def test_paper_image_from_mirror(mirror):
    x = paper_image("denoising/image_House256rgb.png")
    assert x.shape == (1, 3, 24, 20) and x.dtype == torch.float32
    barbara = paper_image("inpainting/Dataset_Bernoulli/img/barbara.png", size=16)
    assert barbara.shape == (1, 1, 16, 16)


def test_paper_image_corrupt_copy(tmp_path, monkeypatch, mirror):
    relpath = "denoising/image_House256rgb.png"
    corrupt = tmp_path / "mirror" / relpath
    corrupt.parent.mkdir(parents=True)
    payload = bytearray((mirror / relpath).read_bytes())
    payload[-100] ^= 0xFF
    corrupt.write_bytes(bytes(payload))
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        paper_image(relpath)


@pytest.mark.parametrize("offline", ["0", "1"])
def test_paper_image_from_cache_without_download(tmp_path, monkeypatch, mirror, offline):
    """Without a mirror, an already cached, checksum-valid file is served offline (by pooch,
    or directly when downloads are disabled)."""
    relpath = "enhancement/tulips.bmp"
    cache = tmp_path / "cache"
    (cache / relpath).parent.mkdir(parents=True)
    shutil.copy(mirror / relpath, cache / relpath)
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(cache))
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", "")  # empty: no mirror
    monkeypatch.setenv("DIPSPEC_OFFLINE", offline)
    assert paper_image(relpath, size=8).shape == (1, 3, 8, 8)


def test_offline_refuses_to_download_and_says_what_to_do(monkeypatch, mirror):
    monkeypatch.setenv("DIPSPEC_OFFLINE", "1")
    monkeypatch.delenv("DIPSPEC_DATA_MIRROR")
    with pytest.raises(FileNotFoundError, match="DIPSPEC_OFFLINE forbids downloads.*MIRROR"):
        paper_image("denoising/image_House256rgb.png")
    corrupt = Path(os.environ["DIPSPEC_DATA_CACHE"]) / "denoising/image_F16_512rgb.png"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not the image")  # a bad cached copy counts as missing
    with pytest.raises(FileNotFoundError, match="not in the mirror or the cache"):
        paper_image("denoising/image_F16_512rgb.png")


def test_paper_mask(mirror):
    mask = paper_mask("inpainting/Dataset_Bernoulli/mask/barbara.h5")
    assert mask.shape == (1, 1, 32, 32) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert abs(float(mask.mean()) - 0.5) < 0.01
    same = paper_mask("inpainting/Dataset_Bernoulli/img/barbara.png")
    assert torch.equal(mask, same)
    region = paper_mask("inpainting/vase.png")
    assert region.shape == (1, 1, 20, 20)
    assert set(region.unique().tolist()) == {0.0, 1.0} and int(region.sum()) == 16 * 20


def test_fetch_all_uses_mirror(mirror):
    paths = fetch_all("denoising")
    assert len(paths) == 2
    assert all(path.is_file() and mirror in path.parents for path in paths)


def test_failed_download_says_how_to_use_a_mirror(monkeypatch, tmp_path):
    import pooch
    import requests

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", offline)
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIPSPEC_DATA_MIRROR", raising=False)
    monkeypatch.setenv("DIPSPEC_OFFLINE", "0")  # let it try, and fail like a machine offline
    with pytest.raises(FileNotFoundError, match="could not download .*DIPSPEC_DATA_MIRROR"):
        paper_image("denoising/image_Peppers512rgb.png")
