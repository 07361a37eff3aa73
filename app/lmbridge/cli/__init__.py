"""The `lmbridge` command line: `main` parses, each module adds a command group."""

from lmbridge.cli.entry import main

__all__ = ["main"]
