"""The Processing provider: thin algorithms that turn QGIS parameters into a backend job and run it."""
