"""``python -m fastrena.cli``."""

import sys

from .main import main

sys.exit(main())
