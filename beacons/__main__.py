"""``python -m beacons``: the same as the ``beacons`` command."""

import sys

from beacons.cli import main

sys.exit(main())
