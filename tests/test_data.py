"""Tests for dipspec.data: embedded images, files and the paper's data (SPEC §10). No downloads."""

from __future__ import annotations

import shutil
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
def mirror(monkeypatch) -> Path:
    if not (MIRROR / "SHA256SUMS").is_file():
        pytest.skip(f"paper data mirror not found at {MIRROR}")
    monkeypatch.setenv("DIPSPEC_DATA_MIRROR", str(MIRROR))
    return MIRROR


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
    x = load_image(tmp_path / "rgba.png")
    assert x.shape == (1, 3, 8, 10)
    assert torch.equal(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))

    deep = (np.arange(8 * 10, dtype=np.uint16).reshape(8, 10) * 800).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    y = load_image(str(tmp_path / "deep.png"))
    assert y.shape == (1, 1, 8, 10)
    np.testing.assert_allclose(y[0, 0].numpy(), deep / 65535.0, atol=1e-6)


def test_save_image_round_trip(tmp_path):
    x = load_image("astronaut", size=24)
    path = save_image(x[0], tmp_path / "sub" / "x.png")
    back = load_image(path)
    assert back.shape == x.shape
    assert torch.equal(back, (x * 255).round() / 255)
    with pytest.raises(ValueError, match="one image"):
        save_image(torch.rand(2, 3, 8, 8), tmp_path / "batch.png")


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
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    barbara = paper_image("inpainting/Dataset_Bernoulli/img/barbara.png", size=64)
    assert barbara.shape == (1, 1, 64, 64)


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


def test_paper_image_from_cache_without_download(tmp_path, monkeypatch):
    """Without a mirror, pooch serves an already cached, checksum-valid file offline."""
    relpath = "enhancement/tulips.bmp"
    if not (MIRROR / relpath).is_file():
        pytest.skip(f"paper data mirror not found at {MIRROR}")
    cache = tmp_path / "cache"
    (cache / relpath).parent.mkdir(parents=True)
    shutil.copy(MIRROR / relpath, cache / relpath)
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(cache))
    assert paper_image(relpath, size=32).shape == (1, 3, 32, 32)


def test_paper_mask(mirror):
    mask = paper_mask("inpainting/Dataset_Bernoulli/mask/barbara.h5")
    assert mask.shape == (1, 1, 512, 512) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert abs(float(mask.mean()) - 0.5) < 0.01
    same = paper_mask("inpainting/Dataset_Bernoulli/img/barbara.png")
    assert torch.equal(mask, same)
    region = paper_mask("inpainting/vase.png")
    assert region.shape == (1, 1, 320, 320)
    assert set(region.unique().tolist()) == {0.0, 1.0}


def test_fetch_all_uses_mirror(mirror):
    paths = fetch_all("denoising")
    assert len(paths) == 9
    assert all(path.is_file() and mirror in path.parents for path in paths)


def test_failed_download_says_how_to_use_a_mirror(monkeypatch, tmp_path):
    import pooch
    import requests

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", offline)
    monkeypatch.setenv("DIPSPEC_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIPSPEC_DATA_MIRROR", raising=False)
    with pytest.raises(FileNotFoundError, match="could not download .*DIPSPEC_DATA_MIRROR"):
        paper_image("denoising/image_Peppers512rgb.png")
