#!/usr/bin/env bash
# Installs what the plugin needs from Debian (QGIS with its Python, GDAL's Python bindings, venv) when missing.
# Idempotent: it installs nothing when everything is there. Needs root or sudo only when something is missing.
set -euo pipefail

missing=()
[ -x /usr/bin/qgis_process.bin ] || missing+=(qgis python3-qgis qgis-providers xvfb)
/usr/bin/python3 -c 'import qgis.core' 2>/dev/null || missing+=(python3-qgis)
/usr/bin/python3 -c 'from osgeo import gdal' 2>/dev/null || missing+=(python3-gdal)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
