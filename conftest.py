"""Session-wide test environment, for unit tests, doctests and the notebooks under nbval alike.

- The paper's images come from ``../shared/paper-data`` when that mirror exists (no download).
- Figures written by notebooks go to a temporary folder unless DIPSPEC_FIGURE_DIR is set, so a
  test run never overwrites the committed ``figures/``.
"""

import os
import tempfile
from pathlib import Path

_MIRROR = Path(__file__).resolve().parent.parent / "shared" / "paper-data"

if _MIRROR.is_dir():
    os.environ.setdefault("DIPSPEC_DATA_MIRROR", str(_MIRROR))
os.environ.setdefault("DIPSPEC_FIGURE_DIR", tempfile.mkdtemp(prefix="dipspec-figures-"))
os.environ.setdefault("MPLBACKEND", "Agg")
# No progress bars under pytest: headless kernels then send no widget traffic.
os.environ.setdefault("DIPSPEC_PROGRESS", "0")
