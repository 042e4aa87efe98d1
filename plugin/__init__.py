"""The plugin inside QGIS: registration, the "Cloud removal" panel, settings, and the backend set-up."""
