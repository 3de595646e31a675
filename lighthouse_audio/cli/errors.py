"""The error a command raises for bad user input (printed as one line, exit status 2).

In its own module so that every command and ``cli.main`` share one class, also when the CLI
runs as ``python -m lighthouse_audio.cli.main`` (which imports ``cli.main`` a second time).
"""


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""
