"""``python -m backend``: the backend's command line (see backend.cli)."""

import os
import sys

# GDAL's block cache defaults to 5 % of the RAM and fills up with written output blocks, so a process's memory
# would grow with the raster up to that share; the streamed writer needs only a few stripes of blocks.
os.environ.setdefault("GDAL_CACHEMAX", "256")

from backend.cli import main  # after the cache setting, which GDAL reads when it loads

sys.exit(main())
