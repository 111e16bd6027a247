"""``python -m dipspec.cli``: the ``dipspec`` command."""

import sys

from .main import main

sys.exit(main())
