"""The networks: torch modules that know nothing of samplers, tiles, files or devices."""
