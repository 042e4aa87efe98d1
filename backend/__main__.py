"""``python -m backend``: the backend's command line (see backend.cli)."""

import os
import sys

# GDAL's block cache defaults to 5 % of the RAM and fills up with read and written blocks, so a process's memory
# would grow with the raster up to that share. Tiles read each input block a few times at most and the writer
# hands over whole rows of blocks, so a small cache costs a little decompression, not time that shows beside the
# network: 64 MB, measured at 4096² with an identity model, peaks ~240 MiB below 256 MB.
os.environ.setdefault("GDAL_CACHEMAX", "64")

from backend.cli import main  # after the cache setting, which GDAL reads when it loads

sys.exit(main())
