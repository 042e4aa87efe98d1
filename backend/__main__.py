"""``python -m backend``: the backend's command line (see backend.cli)."""

import sys

from backend.cli import main

sys.exit(main())
