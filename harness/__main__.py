"""``python -m harness``: the ``bench`` command (also what ``torchrun -m harness ...`` runs)."""

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
