"""The plugin inside QGIS: registration with QGIS and user settings (the backend location)."""
