"""Store notebooks small: run them (optionally), then keep only the checked findings' text.

    python notebooks/tools/store.py notebooks/*.ipynb            # strip outputs only
    python notebooks/tools/store.py --execute notebooks/*.ipynb  # run (quick on a CPU), strip

Every output is dropped except the stdout of the cells that start with ``# NBVAL_CHECK_OUTPUT``
(the named booleans ``pytest --nbval-lax`` compares); execution counts, widget state and
papermill metadata go too. ``--execute`` runs each notebook in its own folder with its
parameters as stored (``PRESET = "auto"``: quick on a CPU) and, unless ``DIPSPEC_FIGURE_DIR``
is set, writes its figures into a temporary folder, never over the committed ``figures/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KEEP_CELL_METADATA = ("tags",)
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop every output but the checked cells' stdout; drop counts and run metadata."""
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        if cell.cell_type != "code":
            continue
        checked = cell.source.lstrip().startswith(CHECK_MARK)
        cell.outputs = [out for out in cell.outputs
                        if checked and out.output_type == "stream" and out.name == "stdout"]
        # nbval compares a checked cell only if it ran ("unrun reference cell has outputs")
        cell.execution_count = (cell.execution_count or 1) if checked and cell.outputs else None
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_METADATA}
    return nb


def execute(nb: nbformat.NotebookNode, folder: Path, timeout: int) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true", help="run each notebook first")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.execute and not os.environ.get("DIPSPEC_FIGURE_DIR"):
        os.environ["DIPSPEC_FIGURE_DIR"] = tempfile.mkdtemp(prefix="dipspec-figures-")
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.execute:
            started = time.perf_counter()
            execute(nb, path.resolve().parent, args.timeout)
            print(f"{path}: ran in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        nbformat.write(strip(nb), path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
