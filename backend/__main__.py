"""``python -m backend``: the backend's command line (see backend.cli)."""

import os
import sys

# GDAL's block cache defaults to 5 % of the RAM and fills up with read and written blocks, so a process's memory
# would grow with the raster up to that share. Tiles read each input block a few times at most and the writer
# hands over whole rows of blocks, so a small cache costs a little decompression, not time that shows beside the
# network. Measured on 512-row mosaics, ONNX Runtime: 4096 px wide peaked 97 MiB lower at 8 MB than at 64 MB
# (1227 -> 1130 MiB), 1024 px wide the same, and the files were byte for byte the same size; 16 MB holds a
# 256 px tile's blocks of 13 bands twice over.
os.environ.setdefault("GDAL_CACHEMAX", "16")

from backend.cli import main  # after the cache setting, which GDAL reads when it loads

sys.exit(main())
