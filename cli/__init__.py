"""The command line, the top layer: `stylecast COMMAND ...` parses flags, calls one layer's
function and prints one line (or JSON). `main` is the console script's entry point."""

from stylecast.cli.main import main

__all__ = ["main"]
