"""The stopping study of issue 15, part 1: trajectories of the other restorations.

Denoising trajectories come from the λ-robustness runs (:mod:`.robustness`). This module adds
JPEG deblocking (quality 10), inpainting (Bernoulli mask, half the pixels kept) and ×4
super-resolution at a preset's scale: three images each, plain DIP and the task's default λ
(:func:`dipspec.presets.default_lambda`), batched per (task, image, seed), each fit journalled
and its per-iteration trajectory saved (PSNR, loss, FBC, ratio and the two output-variance
curves; see :func:`.trajectories.record_fits`). Run it as::

    python -m dipspec.experiments.stopping_study --preset quick --out results/stopping/quick
    python -m dipspec.experiments.stopping_study --held-out     # HELD_OUT_TASKS' images

The recommended rule of each task (:data:`dipspec.fitting.stops.RECOMMENDED`) was chosen on the
fits of :data:`STUDY_TASKS`; :data:`HELD_OUT_TASKS` holds three more images per task that no
choice has seen, reported apart.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import tasks
from ..fitting import FitInterrupted
from ..presets import Preset, default_lambda, resolve
from .chakrabarty.tables import FitJournal
from .setup import load
from .trajectories import label, record_fits

__all__ = ["HELD_OUT_TASKS", "STUDY_TASKS", "make_task", "record_tasks", "short_name",
           "study_image"]

#: Task → the three images it is studied on (paths of the paper's data, or short names).
STUDY_TASKS = {
    "deblock": ("deblocking/classic5/barbara.bmp", "deblocking/classic5/boats.bmp",
                "deblocking/classic5/peppers.bmp"),
    "inpaint": ("inpainting/Dataset_Bernoulli/img/barbara.png",
                "inpainting/Dataset_Bernoulli/img/boat.png",
                "inpainting/Dataset_Bernoulli/img/couple.png"),
    "super_resolve": ("House", "F16", "Peppers"),
}

#: Task → three images kept out of the choice of its recommended rule, fixed before any of them
#: was fitted by one rule: the next images of the same collection in its listed order —
#: classic5's other two and LIVE1's first; the Bernoulli set's next three after ``couple``; the
#: first three Kodak images (no Kodak image was ever a design image).
HELD_OUT_TASKS = {
    "deblock": ("deblocking/classic5/baboon.bmp", "deblocking/classic5/lena.bmp",
                "deblocking/LIVE1/bikes.bmp"),
    "inpaint": ("inpainting/Dataset_Bernoulli/img/fingerprint.png",
                "inpainting/Dataset_Bernoulli/img/hill.png",
                "inpainting/Dataset_Bernoulli/img/house.png"),
    "super_resolve": ("kodim01", "kodim02", "kodim03"),
}


def study_image(kind: str, name: str) -> str:
    """The study's image of task ``kind`` whose short name (file stem) is ``name``."""
    for image in (*STUDY_TASKS[kind], *HELD_OUT_TASKS[kind]):
        if short_name(image) == name:
            return image
    raise ValueError(f"{name!r} is not an image of the {kind} study")


def make_task(kind: str, image: str, scale: Preset, seed: int) -> tasks.Task:
    """The study's degradation ``kind`` of ``image`` at the preset's image size."""
    clean = load(image, scale.image_size, preset=scale)
    if kind == "deblock":
        return tasks.Deblock(10, clean=clean, seed=seed)
    if kind == "inpaint":
        return tasks.Inpaint(keep=0.5, clean=clean, seed=seed)
    if kind == "super_resolve":
        return tasks.SuperResolve(4, clean=clean, seed=seed)
    raise ValueError(f"unknown study task {kind!r}; choose one of {sorted(STUDY_TASKS)}")


def short_name(image: str) -> str:
    """The name a study image goes by in the journal and the results: its file stem."""
    return Path(image).stem


def record_tasks(out: str | Path, preset: str | Preset = "quick",
                 kinds: Sequence[str] = tuple(STUDY_TASKS), seeds: Sequence[int] = (0,),
                 iterations: int | None = None, device: str = "cpu",
                 progress: bool = True, held_out: bool = False) -> Path:
    """Run every missing (task, image, seed) pair of fits; return the journal's path.

    The images are :data:`STUDY_TASKS`', or with ``held_out`` :data:`HELD_OUT_TASKS`'."""
    images = HELD_OUT_TASKS if held_out else STUDY_TASKS
    scale = resolve(preset)
    out = Path(out)
    journal = FitJournal(out / "stopping.journal.jsonl")
    steps = iterations or scale.iterations
    for seed in seeds:
        for kind in kinds:
            lambdas = (None, default_lambda(kind, scale))
            for image in images[kind]:
                keys = [{"task": kind, "image": short_name(image), "size": scale.image_size,
                         "width": scale.channels, "lambda": label(lam), "seed": seed,
                         "iterations": steps, "preset": scale.name} for lam in lambdas]
                todo = [(lam, key) for lam, key in zip(lambdas, keys)
                        if journal.get(key) is None]
                if todo:
                    record_fits(out, journal, make_task(kind, image, scale, seed), todo, seed,
                                scale, steps, device, progress,
                                prefix=f"{kind}_{short_name(image)}_s{seed}")
    return journal.path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trajectories for the stopping study")
    parser.add_argument("--preset", default="quick", choices=("quick", "wide", "paper"))
    parser.add_argument("--out", default=None, help="default results/stopping/PRESET")
    parser.add_argument("--tasks", nargs="+", default=list(STUDY_TASKS), choices=STUDY_TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--held-out", action="store_true",
                        help="fit the held-out images (HELD_OUT_TASKS) instead")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or f"results/stopping/{args.preset}"
    try:
        path = record_tasks(out, args.preset, args.tasks, args.seeds, args.iterations,
                            args.device, progress=not args.quiet, held_out=args.held_out)
    except (FitInterrupted, KeyboardInterrupt):
        print(f"interrupted: finished fits are kept in {out}; run the same command to "
              "continue", file=sys.stderr)
        return 130
    print(f"trajectories journalled in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
