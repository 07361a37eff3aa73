"""Entry script of the PyInstaller bundle: the same `lmbridge` command."""

import sys

from lmbridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
