"""One module per ``python -m backend COMMAND``: the command line over the core (the core never imports these)."""
