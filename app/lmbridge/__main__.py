import sys

from lmbridge.cli import main

sys.exit(main())
