"""Networks, samplers, model cards and the registry of named models. Never imports qgis."""
