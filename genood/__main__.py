"""``python -m genood`` is the ``genood`` command."""

import sys

from genood.cli import main

sys.exit(main())
