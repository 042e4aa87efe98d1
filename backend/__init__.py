"""The QGIS-free cloud-removal backend: job protocol, raster I/O, tiling, runtimes and the command line.

Runs in its own virtual environment as ``python -m backend ...`` with the plugin folder as working directory.
It never imports qgis.
"""
