"""`python -m tinyc`: the same command line as `tinyc`."""

import sys

from .cli import main

sys.exit(main())
