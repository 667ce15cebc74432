"""``python -m harness.cli``: the ``bench`` command."""

import sys

from harness.cli import main

sys.exit(main())
