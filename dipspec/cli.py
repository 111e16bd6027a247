"""The ``dipspec`` command line: ``dipspec run TASK --image NAME_OR_PATH ...`` and
``dipspec table architectures`` (Chakrabarty & Maji's architecture table, SPEC §9).

Bad input ends with exit code 2 and one line on stderr; outputs are written to a temporary
folder first and moved into place at the end, so a failed run leaves nothing partial behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

_EPILOG = """examples:
  dipspec run denoise --image astronaut --out out/astronaut
  dipspec run denoise --image my_noisy_photo.png --observed --lambda 1.4
  dipspec run inpaint --image camera --lambda 1.6 --upsample gaussian --sigma 0.5
  dipspec run super_resolve --image coffee --preset quick --iterations 1500
"""


def _parser() -> argparse.ArgumentParser:
    from .nn import UPSAMPLE_MODES
    from .tasks import TASKS

    parser = argparse.ArgumentParser(
        prog="dipspec",
        description="Deep image prior with spectral-bias control (Shi et al., IJCV 2022).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="restore one image and write output.png, history.csv and psnr.png",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    run.add_argument("task", choices=sorted(TASKS), help="the degradation to undo")
    run.add_argument("--image", default="astronaut",
                     help="an embedded scikit-image name (astronaut, camera, coffee, …) or a file "
                          "path (default: astronaut)")
    run.add_argument("--observed", action="store_true",
                     help="the image is already degraded (your own noisy photo): fit it as is, "
                          "without a clean reference or PSNR")
    run.add_argument("--lambda", dest="lipschitz_lambda", default=None,
                     help="Lipschitz constant λ of every conv (SPEC §3); 'off' for plain DIP "
                          "(default: the task's reference value, e.g. 1.4 for denoising)")
    run.add_argument("--upsample", choices=UPSAMPLE_MODES, default="bilinear",
                     help="upsampling layer of the decoder (default: bilinear)")
    run.add_argument("--sigma", dest="gaussian_sigma", type=float, default=None,
                     help="σ of the Gaussian upsampling, all stages (default: the paper's "
                          "0.1,0.1,0.1,0.5,0.5); implies --upsample gaussian")
    run.add_argument("--iterations", type=int, default=None,
                     help="optimisation steps (default: the preset's, 100 for enhance)")
    run.add_argument("--preset", choices=("auto", "quick", "paper"), default="auto",
                     help="run scale: quick (CPU: small image, 32 channels) or paper (full "
                          "size, 128 channels, 10 000 steps); auto = paper on a GPU")
    run.add_argument("--size", type=int, default=None,
                     help="resize the image so its longer side is this, keeping its aspect "
                          "(default: 96 for an embedded image in the quick preset, else full "
                          "size; 0 keeps the full size)")
    run.add_argument("--noise-sigma", type=float, default=25.0,
                     help="denoise: std of the added Gaussian noise, in 8-bit units (25)")
    run.add_argument("--quality", type=int, default=10, help="deblock: JPEG quality (10)")
    run.add_argument("--factor", type=int, default=4, help="super_resolve: scale factor (4)")
    run.add_argument("--auto-stop", action="store_true",
                     help="end at the blur/sharpness stopping rule (SPEC §6)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    run.add_argument("--out", default="out", help="output folder (default: ./out)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _table_parser(sub)
    return parser


_TABLE_EPILOG = """examples:
  dipspec table architectures --seeds 3 --out results
  dipspec table architectures --images Peppers --seeds 1 --iterations 20 --out /tmp/table
  dipspec table architectures --iterations DIP=2000,ReLUNet=5000 --dip-channels 128
  dipspec table architectures --architectures Linear-2048 --iterations 300 --update
"""


def _table_parser(sub) -> None:
    table = sub.add_parser(
        "table", help="reproduce a results table (architectures: Chakrabarty & Maji)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_TABLE_EPILOG)
    table.add_argument("which", choices=("architectures",),
                       help="architectures: oracle denoising PSNR of DIP, DIP Linear-128, "
                            "DIP Linear-2048 and ReLUNet on the nine denoising images")
    table.add_argument("--images", nargs="+", default=None,
                       help="substrings selecting denoising images (default: all nine)")
    table.add_argument("--seeds", type=int, default=3,
                       help="number of seeds 0 … n−1 (noise and initialisation; default 3)")
    table.add_argument("--factor", type=int, default=4,
                       help="downsample the images by this factor (default 4)")
    table.add_argument("--iterations", default="2000",
                       help="iterations of every fit, or per model: "
                            "'DIP=600,Linear-128=300,Linear-2048=40,ReLUNet=300' (default 2000)")
    table.add_argument("--architectures", nargs="+", default=None,
                       help="subset of: DIP Linear-128 Linear-2048 ReLUNet (default: all)")
    table.add_argument("--dip-channels", type=int, default=128,
                       help="width of the DIP encoder–decoder (default 128; the poster: 256)")
    table.add_argument("--log-every", type=int, default=1,
                       help="read the PSNR every N iterations for the oracle (default 1: every "
                            "iterate; N > 1 makes ReLUNet's steps several times cheaper)")
    table.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    table.add_argument("--threads", type=int, default=None,
                       help="CPU threads for torch (default: torch's choice)")
    table.add_argument("--out", default="results",
                       help="folder for architectures.csv, .md and .json (default: ./results)")
    table.add_argument("--update", action="store_true",
                       help="replace only these architectures' columns of the table already "
                            "in --out (same images, seeds and factor); provenance is kept "
                            "per column")
    table.add_argument("--quiet", action="store_true", help="no line per finished fit")


QUICK_SIZE = 96


class UsageError(ValueError):
    """Raised for bad command-line values; reported as one line and exit code 2."""


def _lambda(value: str | None, task) -> float | None:
    if value is None:
        return task.default_lipschitz_lambda
    if value.lower() in ("off", "none", "0", "inf"):
        return None
    try:
        lam = float(value)
    except ValueError as err:
        raise UsageError(f"--lambda must be a number > 0 or 'off', got {value!r}") from err
    if not lam > 0:
        raise UsageError(f"--lambda must be > 0 or 'off', got {value!r}")
    return lam


def _task(args, image):
    from .tasks import make_task

    params = {"denoise": {"sigma": args.noise_sigma / 255.0},
              "deblock": {"quality": args.quality},
              "super_resolve": {"factor": args.factor}}.get(args.task, {})
    key = "observation" if args.observed else "clean"
    return make_task(args.task, **params, **{key: image, "seed": args.seed})


def _run(args) -> Path:
    import torch

    from . import data, presets
    from .fitting import fit
    from .nn import Decoder
    from .viz import plots

    device = presets.resolve_device(args.device)
    preset = presets.resolve(args.preset, device)
    image = data.load_image(args.image)
    size = args.size
    if size is None and preset.name == "quick" and args.image in data.EMBEDDED_IMAGES:
        size = QUICK_SIZE
    if size:  # longer side = size, aspect kept: nothing of the image is cropped away
        scale = size / max(image.shape[-2:])
        target = tuple(max(1, round(n * scale)) for n in image.shape[-2:])
        image = data.load_image(args.image, size=target)
    task = _task(args, image)
    upsample = "gaussian" if args.gaussian_sigma is not None else args.upsample
    sigma = args.gaussian_sigma if args.gaussian_sigma is not None else (0.1, 0.1, 0.1, 0.5, 0.5)
    model = Decoder(out_channels=task.channels, channels=preset.channels,
                    lipschitz_lambda=_lambda(args.lipschitz_lambda, task), upsample=upsample,
                    gaussian_sigma=sigma, seed=args.seed)
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {args.iterations}")
    torch.manual_seed(args.seed)
    result = fit(task, model=model, iterations=args.iterations, seed=args.seed, device=device,
                 preset=preset, auto_stop=args.auto_stop, progress=not args.quiet)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dipspec-", dir=out.parent))
    try:
        data.save_image(result.output, staging / "output.png")
        data.save_image(task.observation, staging / "observation.png")
        if result.best is not None:
            data.save_image(result.best, staging / "best.png")
        result.history.to_csv(staging / "history.csv", index=False)
        fig = _summary_figure(result, task, plots)
        fig.savefig(staging / "psnr.png", dpi=110, bbox_inches="tight")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = result.history.iloc[-1]
    summary = f"final PSNR {final['psnr']:.2f} dB, " if task.clean is not None else ""
    print(f"{summary}{len(result.history)} logged iterations in {result.wall_time:.0f} s on "
          f"{result.device}; results in {out.resolve()}")
    return out


def _summary_figure(result, task, plots):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3 if task.clean is None else 4, figsize=(12, 3))
    images = {"observation": task.observation, "restored": result.output}
    if task.clean is not None:
        images["clean"] = task.clean
    plots.show_images(images, axes=axes[: len(images)])
    if task.clean is not None:
        plots.plot_psnr({"fit": result}, ax=axes[-1], mark_stop=result.stop_iteration is not None)
    else:
        axes[-1].plot(result.history["iteration"], result.history["loss"])
        axes[-1].set(xlabel="iteration", ylabel="loss", yscale="log")
    fig.tight_layout()
    return fig


def _architecture_names(names: list[str] | None) -> list[str]:
    from .experiments.chakrabarty import ARCHITECTURES

    if not names:
        return list(ARCHITECTURES)
    by_key = {a.lower().removeprefix("dip ").replace(" ", ""): a for a in ARCHITECTURES}
    chosen = []
    for name in names:
        key = name.lower().removeprefix("dip ").replace(" ", "")
        if key not in by_key:
            raise UsageError(f"unknown architecture {name!r}; choose from "
                             f"DIP, Linear-128, Linear-2048, ReLUNet")
        chosen.append(by_key[key])
    return chosen


def _iterations(value: str, architectures: list[str]) -> dict[str, int]:
    def count(text: str) -> int:
        try:
            number = int(text)
        except ValueError as err:
            raise UsageError(f"--iterations needs whole numbers, got {text!r}") from err
        if number < 1:
            raise UsageError(f"--iterations must be >= 1, got {number}")
        return number

    if "=" not in value:
        return dict.fromkeys(architectures, count(value))
    given = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        given[_architecture_names([name.strip()])[0]] = count(number.strip())
    missing = [a for a in architectures if a not in given]
    if missing:
        raise UsageError(f"--iterations gives no count for {', '.join(missing)}")
    return {a: given[a] for a in architectures}


def _table(args) -> Path:
    import time

    import torch

    from . import presets
    from .experiments import chakrabarty
    from .nn import retain_freed_memory
    from .viz import plots

    if args.threads:
        torch.set_num_threads(args.threads)
    retain_freed_memory()  # DIP Linear-2048 steps 3-4x faster on a CPU
    if min(args.seeds, args.factor, args.dip_channels, args.log_every) < 1:
        raise UsageError("--seeds, --factor, --dip-channels and --log-every must be >= 1")
    architectures = _architecture_names(args.architectures)
    iterations = _iterations(args.iterations, architectures)
    device = presets.resolve_device(args.device)
    images = chakrabarty.table_images(args.factor, args.images)

    def report(row: dict) -> None:
        if not args.quiet:
            print(f"{row['image']:>22} {row['architecture']:>16} seed {row['seed']}: "
                  f"{row['psnr']:.2f} dB at {row['best_iteration']} ({row['wall_time_s']:.0f} s)",
                  flush=True)

    settings = dict(factor=args.factor, sigma="25/255", seeds=list(range(args.seeds)),
                    images={k: list(v.shape[-2:]) for k, v in images.items()})
    if args.update:  # before hours of fits, not after
        chakrabarty.check_updatable(args.out, settings)
    # provenance first: the commit is the code that runs, not the checkout hours later
    info = plots.provenance(
        "table architectures", command="dipspec table architectures", **settings,
        iterations=iterations, dip_channels=args.dip_channels,
        learning_rates=chakrabarty.LEARNING_RATES,
        psnr=f"best over the trajectory (oracle), read every {args.log_every} iteration(s)",
        device=chakrabarty.machine() if device.type == "cpu" else str(device),
        torch=torch.__version__)
    started = time.perf_counter()
    rows = chakrabarty.architecture_table(
        images, seeds=range(args.seeds), iterations=iterations, architectures=architectures,
        dip_channels=args.dip_channels, device=device, on_row=report, log_every=args.log_every)
    wall = info["wall_time_s"] = round(time.perf_counter() - started, 1)
    write = chakrabarty.update_table if args.update else chakrabarty.write_table
    paths = write(rows, args.out, info)
    print(f"{len(rows)} fits in {wall:.0f} s; table in {paths['md'].resolve()}")
    return paths["md"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dipspec`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            _run(args)
        elif args.command == "table":
            _table(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"dipspec: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
