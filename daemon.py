"""Service entry point: ``python daemon.py [--config F] [--once]`` runs the beacons daemon."""

import sys

from beacons.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
