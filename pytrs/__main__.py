"""`python -m pytrs` is the `pytrs` console script."""

import sys

from pytrs.cli import main

sys.exit(main())
