"""Errors the command line reports as one line and exit code 2 (no traceback)."""


class InputError(Exception):
    """Bad input from the user: a file, a flag, a device. The message names the problem."""
