"""The ``dipspec`` argument parser: ``run``, ``resume``, ``table`` and ``sweep``.

Every flag's value is checked here, by its type, so a bad value is reported in the flag's own
terms (``argument --noise-sigma: ...`` in the 0–255 units it takes) on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

__all__ = ["QUICK_SIZE", "build_parser"]

#: Longer side of an embedded image in the quick preset.
QUICK_SIZE = 96
#: Longer side an image file is capped to in the quick preset unless --size says otherwise.
PHOTO_CAP = 512

_EPILOG = """examples:
  dipspec run denoise --image astronaut --out out/astronaut     synthetic test, PSNR vs clean
  dipspec run denoise --image my_noisy_photo.png --out out/photo   your photo, restored as is
  dipspec run inpaint --image damaged.png --mask known.png --out out/inpaint
  dipspec run super_resolve --image coffee --preset quick --iterations 1500
  dipspec resume out/photo                  continue a run stopped by Ctrl-C, SIGTERM or a crash

An embedded image (astronaut, camera, coffee, ...) is degraded synthetically and scored by PSNR
against the clean original; an image file is restored as it is (no PSNR) unless --synthetic.
Exit codes: 0 done, 1 failed while running, 2 bad usage or input, 130 Ctrl-C, 143 SIGTERM.
"""

_TABLE_EPILOG = """examples:
  dipspec table architectures --out results          the committed table's settings
  dipspec table architectures --images Peppers --seeds 1 --iterations 20 --out /tmp/table
  dipspec table architectures --iterations DIP=4000,Linear-128=2000,Linear-2048=2000,\
ReLUNet=20000 --dip-channels 256                    the poster's scale (a GPU)
  dipspec table architectures --architectures Linear-2048 --iterations 300 --update

The table is the shipped sweep spec 'architectures' (dipspec sweep architectures runs the same
fits) with these options applied. It runs in OUT/architectures.sweep/ (journal, one history per
fit): after Ctrl-C, SIGTERM or a crash the same command again runs only the missing fits.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (no usage block)."""

    def error(self, message: str):
        match = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message)
        if match:  # "argument --size: must be ..." -> "--size must be ..."
            name, rest = match.groups()
            message = f"{name} {rest}" if rest.startswith(("must", "needs")) else f"{name}: {rest}"
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _whole(low: int, what: str = "", high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs a whole number{what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bound}{what}, got {text}")
        return value
    return parse


def _real(low: float, what: str, high: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value
    return parse


def _lambda(text: str) -> float | str:
    if text.lower() in ("off", "none"):
        return "off"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'off' (plain DIP), got "
                                         f"{text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}; write "
                                         "--lambda off for plain DIP (the paper uses 1-3)")
    return value


def _debug(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    from ..nn import UPSAMPLE_MODES
    from ..tasks import TASKS

    parser = _Parser(prog="dipspec", epilog=_EPILOG,
                     description="Deep image prior with spectral-bias control (Shi et al., "
                                 "IJCV 2022).",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser(
        "run", help="restore one image: output.png, best.png, history.csv, psnr.png, run.json",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    run.add_argument("task", choices=sorted(TASKS), help="the degradation to undo")
    _run_inputs(run)
    _run_model(run, UPSAMPLE_MODES)
    _run_outputs(run)
    _resume_parser(sub)
    _table_parser(sub)
    _sweep_parser(sub)
    _teach_parser(sub)
    return parser


def _run_inputs(run: argparse.ArgumentParser) -> None:
    run.add_argument("--image", default="astronaut",
                     help="an embedded scikit-image name (astronaut, camera, coffee, …) or an "
                          "image file (default: astronaut)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--synthetic", action="store_true",
                      help="treat the image as clean: degrade it synthetically and report PSNR "
                           "against it (the default for embedded images)")
    mode.add_argument("--observed", action="store_true",
                      help="treat the image as already degraded and restore it as it is, no "
                           "PSNR (the default for image files)")
    run.add_argument("--mask", default=None, metavar="FILE",
                     help="inpaint: the known pixels, white (known) and black (missing), the "
                          "image's size; needed to inpaint an image file as it is")
    run.add_argument("--size", type=_whole(0, " (pixels; 0 = full size)"), default=None,
                     help=f"resize so the longer side is this, aspect kept (default: "
                          f"{QUICK_SIZE} for an embedded image and at most {PHOTO_CAP} for a "
                          "file in the quick preset, else full size; 0 = full size)")
    run.add_argument("--noise-sigma", type=_real(0, "must be a noise std in 8-bit units, 0-255 "
                                                    "(the paper: 25)", 255), default=None,
                     help="denoise --synthetic: std of the added Gaussian noise, in 8-bit "
                          "units (default 25)")
    run.add_argument("--quality", type=_whole(1, " (JPEG quality)", 95), default=None,
                     help="deblock --synthetic: JPEG quality 1-95 (default 10)")
    run.add_argument("--factor", type=_whole(2, " (scale factor)"), default=4,
                     help="super_resolve: scale factor (default 4)")


def _run_model(run: argparse.ArgumentParser, modes) -> None:
    run.add_argument("--lambda", dest="lipschitz_lambda", type=_lambda, default=None,
                     help="Lipschitz constant λ of every conv (SPEC §3), a number > 0, or "
                          "'off' for plain DIP (default: the task's rule for the preset)")
    run.add_argument("--upsample", choices=modes, default=None,
                     help="upsampling layer of the decoder (default: bilinear; gaussian with "
                          "--sigma)")
    run.add_argument("--sigma", dest="gaussian_sigma", default=None,
                     type=_real(0, "must be a finite σ >= 0 (the paper: 0.1-1)"),
                     help="σ of the Gaussian upsampling, every stage (default with --upsample "
                          "gaussian: the paper's 0.1,0.1,0.1,0.5,0.5)")
    run.add_argument("--channels", type=_whole(1, " (decoder width)", 1024), default=None,
                     help="decoder width (default: the preset's, 32 quick / 128 wide and paper)")
    run.add_argument("--iterations", type=_whole(1), default=None,
                     help="optimisation steps (default: the preset's, 100 for enhance)")
    run.add_argument("--preset", choices=("auto", "quick", "wide", "paper"), default="auto",
                     help="run scale: quick (CPU: small image, 32 channels), wide (128 px, "
                          "128 channels, 5000 steps) or paper (full size, 128 channels, "
                          "10 000 steps); auto = paper on a GPU")
    run.add_argument("--auto-stop", action="store_true",
                     help="end at the kit's recommended stop rule: the discrepancy principle "
                          "for denoising, the paper's blur/sharpness rule (SPEC §6) otherwise")
    run.add_argument("--stop-rule", default=None,
                     choices=("paper", "discrepancy", "es-wmv", "es-emv", "ratio-plateau"),
                     help="end where this rule fires (paper: SPEC §6 on every task)")
    run.add_argument("--seed", type=_whole(0, "", 2**63 - 1), default=0,
                     help="random seed (default 0)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    run.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                     help="arithmetic of the network: fp32, or bf16 (autocast; faster for wide "
                          "networks on CPUs with bf16 units and on GPUs); default the preset's")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="run the network in channels-last (NHWC) memory order (faster "
                          "convolutions on most CPUs); default the preset's")


def _run_outputs(run: argparse.ArgumentParser) -> None:
    run.add_argument("--out", default="out",
                     help="output folder: new, empty, or written by dipspec before (it is "
                          "then replaced); default ./out")
    _checkpoint(run)
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _debug(run)


def _checkpoint(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    parser.add_argument("--checkpoint-every", type=_whole(1, " (iterations)"), default=default,
                        metavar="N",
                        help="save the fit's state every N iterations, for dipspec resume "
                             "(default: about every minute of work)")


def _resume_parser(sub) -> None:
    resume = sub.add_parser(
        "resume", help="continue a run stopped by Ctrl-C, SIGTERM or a crash",
        description="Continue the run whose --out was DIR from its last checkpoint; the result "
                    "is the same, byte for byte on a CPU, as a run never stopped.")
    resume.add_argument("dir", metavar="DIR", help="the --out folder of the stopped run")
    _checkpoint(resume)
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    _debug(resume)


def _table_parser(sub) -> None:
    table = sub.add_parser(
        "table", help="reproduce a results table (architectures: Chakrabarty & Maji)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_TABLE_EPILOG)
    table.add_argument("which", choices=("architectures",),
                       help="architectures: oracle denoising PSNR of DIP, DIP Linear-128, "
                            "DIP Linear-2048 and ReLUNet on the nine denoising images")
    table.add_argument("--images", nargs="+", default=None,
                       help="substrings selecting denoising images (default: all nine)")
    table.add_argument("--seeds", type=_whole(1), default=3,
                       help="number of seeds 0 … n−1 (noise and initialisation; default 3)")
    table.add_argument("--factor", type=_whole(1), default=4,
                       help="downsample the images by this factor (default 4)")
    table.add_argument("--iterations", default=None,
                       help="iterations of every fit, or per model: "
                            "'DIP=600,Linear-128=300,Linear-2048=40,ReLUNet=300' (default: the "
                            "shipped spec's, those of results/architectures.*: DIP 1000, "
                            "Linear 300, ReLUNet 2000)")
    table.add_argument("--architectures", nargs="+", default=None,
                       help="subset of: DIP Linear-128 Linear-2048 ReLUNet (default: all)")
    table.add_argument("--dip-channels", type=_whole(1), default=None,
                       help="width of the DIP encoder–decoder (default: the spec's 32; the "
                            "poster: 256)")
    table.add_argument("--log-every", type=_whole(1), default=None,
                       help="read the PSNR every N iterations for the oracle (default: the "
                            "spec's, 5-25 by model; 1 reads every iterate, N > 1 makes "
                            "ReLUNet's steps several times cheaper)")
    table.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    table.add_argument("--threads", type=_whole(1), default=None,
                       help="CPU threads for torch (default: torch's choice)")
    table.add_argument("--out", default="results",
                       help="folder for architectures.csv, .md and .json (default: ./results)")
    table.add_argument("--update", action="store_true",
                       help="replace only these architectures' columns of the table already "
                            "in --out (same images, seeds and factor); provenance is kept "
                            "per column")
    table.add_argument("--quiet", action="store_true", help="no line per finished fit")
    _debug(table)


_SWEEP_EPILOG = """examples:
  dipspec sweep lambdas.toml                                  this machine, batched
  dipspec sweep lambdas.toml --engine ray                     a local Ray, one task per batch
  dipspec sweep lambdas.toml --engine ray --address auto      the Ray cluster started here
  dipspec sweep architectures --out results/sweep             a spec shipped with the kit
  dipspec sweep lambdas.toml --dry-run                        check the spec, show the batches

Each finished batch is journalled in OUT/journal.jsonl: after Ctrl-C, SIGTERM, SIGKILL or a
crash, the same command runs only the missing fits; a changed spec runs only its new fits.
"""


def _sweep_parser(sub) -> None:
    sweep = sub.add_parser(
        "sweep", help="run a spec's grid of fits, batched and resumable, here or on Ray",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_SWEEP_EPILOG,
        description="Run every configuration of SPEC (TOML, or YAML with PyYAML): compatible "
                    "fits batched with fit_many, one row per fit in OUT/table.csv, each fit's "
                    "history in OUT/histories/, provenance in OUT/sweep.json.")
    sweep.add_argument("spec", metavar="SPEC",
                       help="a .toml / .yaml spec, or the name of a shipped one (architectures, "
                            "example)")
    sweep.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: batches one after the other here (default); ray: one Ray "
                            "task per batch, a GPU each when the cluster has them")
    sweep.add_argument("--address", default=None,
                       help="--engine ray: the cluster to join (auto, ray://HEAD:10001); "
                            "default a new local Ray")
    sweep.add_argument("--out", default=None,
                       help="the sweep's folder: new, empty or a sweep's (reused: fits it "
                            "holds are not run again); default sweeps/<SPEC's name>")
    sweep.add_argument("--device", default="auto",
                       help="--engine local: auto, cpu or cuda (default auto)")
    sweep.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                       help="run only the fits whose KEY is one of these values (repeatable: "
                            "--only image=House --only seed=0)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="check the spec and print the batches still to run; run nothing")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    _debug(sweep)


def _teach_parser(sub) -> None:
    teach = sub.add_parser(
        "teach", help="open the Voilà lesson on spectral bias (notebooks/teach.ipynb)",
        description="Serve the one-page lesson on 127.0.0.1 with Voilà: no code, explorers "
                    "over a precomputed grid (instant), off-grid values fitted in the "
                    "background. --precompute makes the grid instead.")
    teach.add_argument("--port", type=_whole(1, " (port)", 65535), default=8866,
                       help="port of the lesson (default 8866)")
    teach.add_argument("--no-browser", action="store_true", help="do not open a browser")
    teach.add_argument("--grid", default=None,
                       help="the grid file (.npz) to open or make (default: the committed "
                            "results/teach/grid.npz)")
    teach.add_argument("--precompute", action="store_true",
                       help="fit the grid (plain DIP and the preset's λ triple × bilinear and "
                            "Gaussian σ 0 / 0.5 / 1; a few minutes at quick) and write --grid")
    teach.add_argument("--preset", default="quick", choices=("quick", "paper", "wide", "auto"),
                       help="--precompute: the scale (default quick)")
    teach.add_argument("--images", nargs="+", default=["camera"],
                       help="--precompute: images of the grid (default camera)")
    teach.add_argument("--iterations", type=_whole(1), default=None,
                       help="--precompute: iterations of each fit (default: the preset's "
                            "figure default, 2000 at quick)")
    teach.add_argument("--seed", type=_whole(0), default=0, help="--precompute: seed (0)")
    teach.add_argument("--device", default="cpu", help="--precompute: cpu or cuda (cpu)")
    teach.add_argument("--threads", type=_whole(1), default=None,
                       help="--precompute: CPU threads for torch (default: torch's choice)")
    teach.add_argument("--quiet", action="store_true", help="--precompute: no progress bar")
    _debug(teach)
