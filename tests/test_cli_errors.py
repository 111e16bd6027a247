"""Every CLI error is one line: ~50 bad inputs through ``main([...])``, in process.

Each must end with its exit code (2: bad usage or input), exactly one line on stderr, no
traceback, the flag as typed in the message — and nothing written.
"""

import json
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dipspec.cli import main

RUN = ["run", "denoise", "--iterations", "2", "--channels", "8", "--device", "cpu", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Tiny image files, good and bad, shared by the cases."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    paths = {}

    def save(name, array, **kw):
        Image.fromarray(array, **kw).save(root / name)
        paths[name] = str(root / name)

    save("photo.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    save("mask.png", np.full((24, 24), 255, np.uint8))
    save("small_mask.png", np.full((12, 12), 255, np.uint8))
    grey = np.full((24, 24), 255, np.uint8)
    grey[0, 0] = 128
    save("grey_mask.png", grey)
    save("black_mask.png", np.zeros((24, 24), np.uint8))
    save("tiny.png", np.zeros((4, 4), np.uint8))
    nan = np.full((24, 24), 0.5, np.float32)
    nan[3, 3] = np.nan
    save("nan.tif", nan, mode="F")
    save("scale255.tif", np.full((24, 24), 200.0, np.float32), mode="F")
    noisy = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(root / "whole.png")
    data = (root / "whole.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    paths["truncated.png"] = str(root / "truncated.png")
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)  # 400 megapixels, RGB
    bomb = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    (root / "bomb.png").write_bytes(bomb)
    paths["bomb.png"] = str(root / "bomb.png")
    (root / "notes.png").write_text("not an image")
    paths["notes.png"] = str(root / "notes.png")
    Image.new("L", (6000, 6000)).save(root / "huge.png")
    paths["huge.png"] = str(root / "huge.png")
    return paths


#: (arguments after `dipspec run denoise ...` or a whole command, flag named in the message)
CASES = [
    (["--iterations", "0"], "--iterations"),
    (["--iterations", "-5"], "--iterations"),
    (["--iterations", "many"], "--iterations"),
    (["--iterations", "100000000"], "--iterations"),
    (["--noise-sigma", "-3"], "--noise-sigma"),
    (["--noise-sigma", "nan"], "--noise-sigma"),
    (["--noise-sigma", "300"], "--noise-sigma"),
    (["--size", "-4"], "--size"),
    (["--size", "4"], "--size"),
    (["--size", "big"], "--size"),
    (["--lambda", "0"], "--lambda"),
    (["--lambda", "-1"], "--lambda"),
    (["--lambda", "inf"], "--lambda"),
    (["--lambda", "nan"], "--lambda"),
    (["--lambda", "abc"], "--lambda"),
    (["--sigma", "-0.5"], "--sigma"),
    (["--sigma", "nan"], "--sigma"),
    (["--sigma", "0.5", "--upsample", "bilinear"], "--sigma"),
    (["--upsample", "bicubic"], "--upsample"),
    (["--channels", "0"], "--channels"),
    (["--seed", "-1"], "--seed"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--device", "mps"], "--device"),
    (["--device", "tpu"], "--device"),
    (["--device", "cuda:7"], "--device"),
    (["--preset", "huge"], "--preset"),
    (["--synthetic", "--observed"], "--observed"),
    (["--image", "no/such/file.png"], "--image"),
    (["--image", "astronot"], "--image"),
    (["--image", "{notes.png}"], "--image"),
    (["--image", "{truncated.png}"], "--image"),
    (["--image", "{bomb.png}"], "--image"),
    (["--image", "{nan.tif}"], "--image"),
    (["--image", "{scale255.tif}"], "--image"),
    (["--image", "{tiny.png}"], "--image"),
    (["--image", "{inputs}"], "--image"),
    (["--image", "{huge.png}", "--size", "0", "--channels", "32"], "--size"),
    (["--mask", "{mask.png}"], "--mask"),
    (["run", "inpaint", "--image", "{photo.png}"], "--mask"),
    (["run", "inpaint", "--image", "{photo.png}", "--mask", "missing.png"], "--mask"),
    (["run", "inpaint", "--image", "{photo.png}", "--mask", "{small_mask.png}"], "--mask"),
    (["run", "inpaint", "--image", "{photo.png}", "--mask", "{grey_mask.png}"], "--mask"),
    (["run", "inpaint", "--image", "{photo.png}", "--mask", "{black_mask.png}"], "--mask"),
    (["run", "deblock", "--quality", "0"], "--quality"),
    (["run", "super_resolve", "--factor", "1"], "--factor"),
    (["run", "super_resolve", "--size", "16"], "--size"),
    (["--stop-rule", "paper", "--size", "24"], "--stop-rule paper"),
    (["run", "deblock", "--auto-stop", "--size", "24"], "--auto-stop"),
    (["--out", "."], "--out"),
    (["--out", "{photo.png}"], "--out"),
    (["--image", "{photo.png}", "--out", "{inputs}"], "--out"),
    (["--image", "{photo.png}", "--out", "{inputs}/.."], "--out"),
    (["--out", "/proc/dipspec-cannot-write-here"], "--out"),
    (["resume", "nowhere"], "DIR"),
    (["table", "architectures", "--seeds", "0"], "--seeds"),
    (["table", "architectures", "--log-every", "0"], "--log-every"),
    (["table", "architectures", "--architectures", "VGG"], "--architectures"),
    (["table", "architectures", "--iterations", "DIP=5"], "--iterations"),
    (["table", "architectures", "--device", "mps"], "--device"),
]


def _argv(args: list[str], files: dict[str, str], out: Path) -> list[str]:
    values = {**files, "inputs": str(Path(files["photo.png"]).parent)}
    args = [re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], a) for a in args]
    if args[0] in ("resume", "table"):
        return args + (["--out", str(out)] if args[0] == "table" else [])
    if args[0] == "run":
        base = [*args[:2], *RUN[2:]]
        args = args[2:]
    else:
        base = list(RUN)
    if "--out" not in args:
        args += ["--out", str(out)]
    return base + args


@pytest.mark.parametrize("args, flag", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_naming_the_flag(args, flag, files, tmp_path, capsys,
                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIPSPEC_MEMORY_AVAILABLE", str(16e9))  # the same answer on any machine
    out = tmp_path / "result"
    code = main(_argv(args, files, out))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert flag in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], "an error left files behind"


def test_unreadable_file(files, tmp_path, capsys, monkeypatch):
    """A file without read permission (simulated: the tests may run as root)."""
    import PIL.Image

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(PIL.Image, "open", denied)
    code = main([*RUN, "--image", files["photo.png"], "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--image" in err
    assert "permission denied" in err.lower()


def test_out_of_memory_is_refused_before_the_fit(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIPSPEC_MEMORY_AVAILABLE", str(10_000_000))
    code = main([*RUN, "--image", "camera", "--size", "64", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "of memory" in err and "--size" in err
    assert len(err.strip().splitlines()) == 1


def test_a_long_fit_warns_with_its_estimate(tmp_path, capsys, monkeypatch):
    from dipspec.cli import inputs

    monkeypatch.setattr(inputs, "WARN_SECONDS", 0.0)
    code = main([*RUN, "--image", "camera", "--size", "16", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 0
    assert "dipspec: warning: this fit will take about" in err and "--preset quick" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError):
        main([*RUN, "--image", "no/such/file.png", "--debug", "--out", str(tmp_path / "r")])


def test_running_out_of_memory_in_the_fit_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("dipspec.fitting.fit", no_memory)
    code = main([*RUN, "--image", "camera", "--size", "16", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "memory" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_output_files_have_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        assert main([*RUN, "--image", "camera", "--size", "16",
                     "--out", str(tmp_path / "a" / "r")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "r").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a" / "r" / "output.png").stat().st_mode & 0o777 == 0o644


def test_a_diverged_fit_keeps_the_best_output_and_exits_1(tmp_path, capsys, monkeypatch):
    import dipspec
    from dipspec.fitting import FitDiverged
    from dipspec.nn import Decoder
    from dipspec.tasks import Denoise

    clean = dipspec.data.load_image("camera", size=16)
    partial = dipspec.fit(Denoise(clean=clean), Decoder(out_channels=1, channels=4, stages=2),
                          iterations=3, device="cpu", progress=False, metrics_every=0)

    def diverges(*args, **kwargs):
        raise FitDiverged(partial, 2)

    monkeypatch.setattr("dipspec.fitting.fit", diverges)
    out = tmp_path / "r"
    code = main([*RUN, "--image", "camera", "--size", "16", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "non-finite" in err
    assert (out / "best.png").is_file() and not (out / "checkpoint.pt").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"
