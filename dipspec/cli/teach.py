"""``dipspec teach``: the Voilà lesson (``notebooks/teach.ipynb``) on 127.0.0.1, or, with
``--precompute``, the grid it starts from.

The lesson opens on a precomputed grid (:mod:`dipspec.experiments.grid`; the committed one is
``results/teach/grid.npz``), so its first screen is instant; values off the grid are fitted in
the background. The notebook ships with the repository, not the wheel: run from a clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import UsageError

__all__ = ["LESSON", "teach_command"]

_REPO = Path(__file__).resolve().parents[2]
#: The lesson notebook (it opens on ``dipspec.experiments.grid.LESSON_GRID`` unless told).
LESSON = _REPO / "notebooks" / "teach.ipynb"


def teach_command(args) -> int:
    from ..experiments.grid import LESSON_GRID

    grid = Path(args.grid).resolve() if args.grid else LESSON_GRID
    if args.precompute:
        return _precompute(grid, args)
    if not LESSON.is_file():
        raise UsageError(f"the lesson notebook ({LESSON.relative_to(_REPO)}) ships with the "
                         "repository, not the package; run dipspec teach from a clone "
                         "(pip install -e '.[teach]')")
    if not grid.is_file():
        raise UsageError(f"no grid at {grid}; make it with dipspec teach --precompute"
                         + (f" --grid {args.grid}" if args.grid else ""))
    try:
        import voila  # noqa: F401
    except ImportError:
        raise UsageError("Voilà is not installed; pip install -e '.[teach]' (or open "
                         "notebooks/teach.ipynb in JupyterLab)") from None
    command = [sys.executable, "-m", "voila", str(LESSON), f"--port={args.port}",
               "--Voila.ip=127.0.0.1"]
    if args.no_browser:
        command.append("--no-browser")
    print(f"dipspec teach: the lesson on http://127.0.0.1:{args.port}/ (Ctrl-C stops it)",
          file=sys.stderr)
    env = dict(os.environ, DIPSPEC_TEACH_GRID=str(grid))
    return subprocess.call(command, env=env)


def _precompute(grid: Path, args) -> int:
    from ..experiments import configure, precompute_grid

    if grid.exists():
        raise UsageError(f"{grid} exists; pass --grid NEW.npz, or remove it to make it again")
    if grid.suffix != ".npz":
        raise UsageError(f"a grid file ends in .npz, got {grid.name!r}")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    setup = configure("lipschitz_control", args.preset, images=args.images,
                      iterations=args.iterations, seed=args.seed, device=args.device)
    made = precompute_grid(setup, progress=not args.quiet)
    path = made.save(grid)
    print(f"dipspec teach: {len(made.results)} fits written to {path}", file=sys.stderr)
    return 0
